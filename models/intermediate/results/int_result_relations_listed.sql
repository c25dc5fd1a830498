{{ school_year_partitioned() }}
{#-
  The linear relations between published result cells that an attacker could subtract
  along, one row per relation and member cell (is_total: the relation's total; the
  others are its parts). Complementary suppression (int_result_cells_suppressed) makes
  sure none of them gives a suppressed cell back.

  - subgroup: an entity's `all` cell is the total of each subgroup category's values
    (same year, respondent type, level, entity, topic or item). The values add up to the
    respondents linked to a student; `all` also counts anonymous ones. That remainder is
    treated as known: an attacker may know or bound it (participation publishes who
    responded), so the relation is treated as exact.
  - level: a district's cell is the total of its schools' cells (same subgroup, topic or
    item); responses without a school count in the district only, a remainder treated as
    known as well.
  - item: a topic cell's favorable and substantive answers are the totals of its items'
    cells (same entity and subgroup); the topic's respondents are not (a respondent answers
    several items), so this relation's parts are judged by their largest cell.
  Every number of a cell is additive or derived from additive ones (percent favorable =
  favorable / substantive; mean = sum / scored respondents), and a suppressed cell hides
  them all, so one relation per cell set protects every number.

  A relation is named by its total and its kind: relation_id = 10 * the total's cell_id
  + 1..6 (subgroup, by category), 7 (level) or 8 (item); only relations with parts exist.
-#}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

cells as (
    select * from {{ ref('int_result_cells_ranked') }}
    where {{ in_changed_school_years('school_year') }}
),

subgroup_parts as (
    select
        10 * totals.cell_id + case parts.subgroup_category
            when 'gender' then 1
            when 'race_ethnicity' then 2
            when 'grade_level' then 3
            when 'english_learner' then 4
            when 'iep' then 5
            when 'econ_disadvantaged' then 6
        end as relation_id,
        'subgroup' as relation_kind,
        totals.school_year,
        parts.cell_id,
        totals.cell_id as total_cell_id,
        totals.respondents as total_respondents,
        parts.respondents
    from cells as parts
    inner join cells as totals
        on parts.result_kind = totals.result_kind
        and parts.school_year = totals.school_year
        and parts.respondent_type = totals.respondent_type
        and parts.reporting_level = totals.reporting_level
        and parts.entity_id = totals.entity_id
        and parts.topic_id = totals.topic_id
        and parts.canonical_item_id = totals.canonical_item_id
    where
        parts.subgroup_category <> 'all'
        and totals.subgroup_category = 'all'
),

level_parts as (
    select
        10 * totals.cell_id + 7 as relation_id,
        'level' as relation_kind,
        totals.school_year,
        parts.cell_id,
        totals.cell_id as total_cell_id,
        totals.respondents as total_respondents,
        parts.respondents
    from cells as parts
    inner join cells as totals
        on parts.result_kind = totals.result_kind
        and parts.school_year = totals.school_year
        and parts.respondent_type = totals.respondent_type
        and parts.district_id = totals.entity_id
        and parts.topic_id = totals.topic_id
        and parts.canonical_item_id = totals.canonical_item_id
        and parts.subgroup_category = totals.subgroup_category
        and parts.subgroup_value = totals.subgroup_value
    where
        parts.reporting_level = 'school'
        and totals.reporting_level = 'district'
),

item_parts as (
    select
        10 * totals.cell_id + 8 as relation_id,
        'item' as relation_kind,
        totals.school_year,
        parts.cell_id,
        totals.cell_id as total_cell_id,
        totals.respondents as total_respondents,
        parts.respondents
    from cells as parts
    inner join cells as totals
        on parts.school_year = totals.school_year
        and parts.respondent_type = totals.respondent_type
        and parts.reporting_level = totals.reporting_level
        and parts.entity_id = totals.entity_id
        and parts.topic_id = totals.topic_id
        and parts.subgroup_category = totals.subgroup_category
        and parts.subgroup_value = totals.subgroup_value
    where
        parts.result_kind = 'item'
        and totals.result_kind = 'topic'
),

parts as (
    select * from subgroup_parts
    union all
    select * from level_parts
    union all
    select * from item_parts
),

totals as (
    select distinct
        relation_id,
        relation_kind,
        school_year,
        total_cell_id as cell_id,
        total_respondents as respondents
    from parts
),

final as (
    select
        relation_id,
        relation_kind,
        cell_id,
        false as is_total,
        respondents,
        school_year
    from parts
    union all
    select
        relation_id,
        relation_kind,
        cell_id,
        true as is_total,
        respondents,
        school_year
    from totals
)

select * from final
