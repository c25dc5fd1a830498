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
-#}
with

cells as (
    select * from {{ ref('int_result_cells_ranked') }}
),

subgroup_parts as (
    select
        'subgroup' as relation_kind,
        result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        topic_id,
        canonical_item_id,
        subgroup_category,
        '' as subgroup_value,
        cell_id,
        false as is_total,
        respondents
    from cells
    where subgroup_category <> 'all'
),

subgroup_categories as (
    select distinct
        result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        topic_id,
        canonical_item_id,
        subgroup_category
    from subgroup_parts
),

subgroup_totals as (
    select
        'subgroup' as relation_kind,
        cells.result_kind,
        cells.school_year,
        cells.respondent_type,
        cells.reporting_level,
        cells.entity_id,
        cells.topic_id,
        cells.canonical_item_id,
        subgroup_categories.subgroup_category,
        '' as subgroup_value,
        cells.cell_id,
        true as is_total,
        cells.respondents
    from cells
    inner join subgroup_categories
        on cells.result_kind = subgroup_categories.result_kind
        and cells.school_year = subgroup_categories.school_year
        and cells.respondent_type = subgroup_categories.respondent_type
        and cells.reporting_level = subgroup_categories.reporting_level
        and cells.entity_id = subgroup_categories.entity_id
        and cells.topic_id = subgroup_categories.topic_id
        and cells.canonical_item_id = subgroup_categories.canonical_item_id
    where cells.subgroup_category = 'all'
),

level_parts as (
    select
        'level' as relation_kind,
        result_kind,
        school_year,
        respondent_type,
        'district' as reporting_level,
        district_id as entity_id,
        topic_id,
        canonical_item_id,
        subgroup_category,
        subgroup_value,
        cell_id,
        false as is_total,
        respondents
    from cells
    where reporting_level = 'school'
),

level_totals as (
    select
        'level' as relation_kind,
        result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        topic_id,
        canonical_item_id,
        subgroup_category,
        subgroup_value,
        cell_id,
        true as is_total,
        respondents
    from cells
    where reporting_level = 'district'
),

item_parts as (
    select
        'item' as relation_kind,
        'topic' as result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        topic_id,
        '' as canonical_item_id,
        subgroup_category,
        subgroup_value,
        cell_id,
        false as is_total,
        respondents
    from cells
    where result_kind = 'item'
),

item_totals as (
    select
        'item' as relation_kind,
        result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        topic_id,
        canonical_item_id,
        subgroup_category,
        subgroup_value,
        cell_id,
        true as is_total,
        respondents
    from cells
    where result_kind = 'topic'
),

members as (
    select * from subgroup_parts
    union all
    select * from subgroup_totals
    union all
    select * from level_parts
    union all
    select * from level_totals
    union all
    select * from item_parts
    union all
    select * from item_totals
),

numbered as (
    select
        *,
        dense_rank() over (
            order by
                relation_kind,
                result_kind,
                school_year,
                respondent_type,
                reporting_level,
                entity_id,
                topic_id,
                canonical_item_id,
                subgroup_category,
                subgroup_value
        ) as relation_id,
        sum(case when is_total then 0 else 1 end) over (
            partition by
                relation_kind,
                result_kind,
                school_year,
                respondent_type,
                reporting_level,
                entity_id,
                topic_id,
                canonical_item_id,
                subgroup_category,
                subgroup_value
        ) as parts,
        sum(case when is_total then 1 else 0 end) over (
            partition by
                relation_kind,
                result_kind,
                school_year,
                respondent_type,
                reporting_level,
                entity_id,
                topic_id,
                canonical_item_id,
                subgroup_category,
                subgroup_value
        ) as totals
    from members
),

final as (
    select
        relation_id,
        relation_kind,
        cell_id,
        is_total,
        respondents
    from numbered
    where parts > 0 and totals = 1
)

select * from final
