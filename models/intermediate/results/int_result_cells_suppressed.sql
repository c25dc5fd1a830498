{#-
  Which result cells are suppressed, and why (suppression_reason):
  - primary: fewer than var('min_reporting_n') respondents (default 10);
  - complementary_subgroup / complementary_level / complementary_item: suppressed so that
    no relation of int_result_relations_listed gives a suppressed cell back (or a group
    of fewer than min_reporting_n): within a subgroup category, between a district and its
    schools, between a topic and its items.
  Each pass checks every relation (macro suppression_checks) and suppresses, on each
  violated one, its smallest published cell (fewest respondents, then the key: cell_id);
  the var('suppression_passes') passes (default 12) are unrolled here, plain SQL that
  gives the same cells on DuckDB and Snowflake. A relation may be mended by a later
  pass only; the test assert_result_suppression_is_a_fixpoint fails the build if
  violations remain after the last pass (then raise suppression_passes).
-#}
{%- set passes = var('suppression_passes', 12) -%}

with

cells as (
    select * from {{ ref('int_result_cells_ranked') }}
),

pass_0 as (
    select
        relation_id,
        relation_kind,
        cell_id,
        is_total,
        respondents,
        {{ is_below_min_reporting_n('respondents') }} as is_suppressed,
        case when {{ is_below_min_reporting_n('respondents') }} then 0 end as reason_code,
        case when {{ is_below_min_reporting_n('respondents') }} then 0 end as suppressed_in_pass
    from {{ ref('int_result_relations_listed') }}
),
{% for pass_number in range(1, passes + 1) %}
{{ suppression_checks('pass_' ~ (pass_number - 1), 'pass_' ~ pass_number) }},

pass_{{ pass_number }}_chosen as (
    select
        chosen_cell_id as cell_id,
        min({{ suppression_reason_code('relation_kind') }}) as reason_code
    from pass_{{ pass_number }}_violations
    group by chosen_cell_id
),

pass_{{ pass_number }} as (
    select
        members.relation_id,
        members.relation_kind,
        members.cell_id,
        members.is_total,
        members.respondents,
        members.is_suppressed or chosen.cell_id is not null as is_suppressed,
        coalesce(members.reason_code, chosen.reason_code) as reason_code,
        coalesce(members.suppressed_in_pass, case when chosen.cell_id is not null then {{ pass_number }} end)
            as suppressed_in_pass
    from pass_{{ pass_number - 1 }} as members
    left join pass_{{ pass_number }}_chosen as chosen
        on members.cell_id = chosen.cell_id
),
{% endfor %}
decided as (
    select
        cell_id,
        max(case when is_suppressed then 1 else 0 end) = 1 as is_suppressed,
        min(reason_code) as reason_code,
        min(suppressed_in_pass) as suppressed_in_pass
    from pass_{{ passes }}
    group by cell_id
),

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
        coalesce(decided.is_suppressed, {{ is_below_min_reporting_n('cells.respondents') }}) as is_suppressed,
        {{ suppression_reason("coalesce(decided.reason_code, case when "
            ~ is_below_min_reporting_n('cells.respondents') ~ " then 0 end)") }} as suppression_reason,
        coalesce(decided.suppressed_in_pass, case when {{ is_below_min_reporting_n('cells.respondents') }} then 0 end)
            as suppressed_in_pass
    from cells
    left join decided
        on cells.cell_id = decided.cell_id
)

select * from final
