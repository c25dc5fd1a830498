{{ school_year_partitioned() }}
{#-
  Which result cells are suppressed, and why (suppression_reason):
  - primary: fewer than var('min_reporting_n') respondents (default 10);
  - complementary_subgroup / complementary_level / complementary_item: suppressed so that
    no relation of int_result_relations_listed gives a suppressed cell back (or a group
    of fewer than min_reporting_n): within a subgroup category, between a district and its
    schools, between a topic and its items.
  Pass after pass, every relation that does not hold (macro suppression_checks) gets its
  smallest published cell suppressed (fewest respondents, then the key: cell_id order).
  A relation's state changes only when one of its cells does, and one more suppressed
  cell always mends it, so pass n checks just the relations of the cells pass n - 1
  suppressed (pass 1: of the primary cells): the same result as checking every relation,
  at the cost of the few that can change. The var('suppression_passes') passes (default
  40) are unrolled here, plain SQL that gives the same cells on DuckDB and Snowflake;
  passes after the last change find nothing to do. The test
  assert_result_suppression_is_a_fixpoint fails the build if a relation still does not
  hold after them (then raise suppression_passes).
-#}
{%- set passes = [var('suppression_passes') | int, 1] | max -%}

-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

cells as (
    select * from {{ ref('int_result_cells_ranked') }}
    where {{ in_changed_school_years('school_year') }}
),

memberships as (
    select * from {{ ref('int_result_relations_listed') }}
    where {{ in_changed_school_years('school_year') }}
),

suppressed_0 as (
    select
        cell_id,
        0 as reason_code,
        0 as suppressed_in_pass
    from cells
    where {{ is_below_min_reporting_n('respondents') }}
),
{% for pass_number in range(1, passes + 1) %}
{%- set previous = 'suppressed_' ~ (pass_number - 1) if pass_number == 1 else 'pass_' ~ (pass_number - 1) ~ '_chosen' %}
pass_{{ pass_number }}_touched as (
    select distinct memberships.relation_id
    from memberships
    inner join {{ previous }} as changed
        on memberships.cell_id = changed.cell_id
),

pass_{{ pass_number }}_members as (
    select
        memberships.relation_id,
        memberships.relation_kind,
        memberships.cell_id,
        memberships.is_total,
        memberships.respondents,
        suppressed.cell_id is not null as is_suppressed
    from memberships
    inner join pass_{{ pass_number }}_touched as touched
        on memberships.relation_id = touched.relation_id
    left join suppressed_{{ pass_number - 1 }} as suppressed
        on memberships.cell_id = suppressed.cell_id
),

{{ suppression_checks('pass_' ~ pass_number ~ '_members', 'pass_' ~ pass_number) }},

pass_{{ pass_number }}_chosen as (
    select
        chosen_cell_id as cell_id,
        min({{ suppression_reason_code('relation_kind') }}) as reason_code,
        {{ pass_number }} as suppressed_in_pass
    from pass_{{ pass_number }}_violations
    group by chosen_cell_id
),

suppressed_{{ pass_number }} as (
    select * from suppressed_{{ pass_number - 1 }}
    union all
    select * from pass_{{ pass_number }}_chosen
),
{% endfor %}
final as (
    select
        cells.cell_id,
        cells.result_kind,
        cells.school_year,
        cells.respondent_type,
        cells.reporting_level,
        cells.entity_id,
        cells.district_id,
        cells.topic_id,
        cells.canonical_item_id,
        cells.subgroup_category,
        cells.subgroup_value,
        cells.respondents,
        suppressed.cell_id is not null as is_suppressed,
        {{ suppression_reason('suppressed.reason_code') }} as suppression_reason,
        suppressed.suppressed_in_pass
    from cells
    left join suppressed_{{ passes }} as suppressed
        on cells.cell_id = suppressed.cell_id
)

select * from final
