{#-
  Complementary suppression, one check at a time: int_result_cells_suppressed runs it
  pass after pass; the test assert_result_suppression_is_a_fixpoint runs it once more
  on what the marts publish.

  suppression_checks(members, name) defines two CTEs from `members`, one row per relation
  and member cell (relation_id, relation_kind, cell_id, is_total, respondents,
  is_suppressed): <name>_relations, one row per relation with its counts, and
  <name>_violations, one row per violated relation with the cell to suppress next
  (chosen_cell_id). A relation is violated when it gives a suppressed cell, or a
  group too small, back:
  - exactly one of its members is suppressed (the total minus the published parts, or
    the sum of the parts, is that cell); or
  - its total is published while its suppressed parts total fewer than
    var('min_reporting_n') respondents (their sum is the total minus the published
    parts). For an item relation (a topic's answers are the sum of its items') the
    suppressed parts count by their largest cell: a respondent answers several items.
  The cell chosen is the relation's smallest published part (fewest respondents, then
  the cell's key: cell_id is that order), or its total when every part is suppressed.
  One more suppressed member always mends the relation: a published part has at least
  min_reporting_n respondents.
-#}
{% macro suppression_checks(members, name) -%}
{{ name }}_relations as (
    select
        relation_id,
        max(relation_kind) as relation_kind,
        sum(case when is_suppressed then 1 else 0 end) as suppressed_members,
        max(case when is_total and is_suppressed then 1 else 0 end) as total_suppressed,
        sum(case when is_suppressed and not is_total then respondents else 0 end) as suppressed_part_respondents,
        max(case when is_suppressed and not is_total then respondents else 0 end) as largest_suppressed_part,
        min(case when not is_suppressed and not is_total then cell_id end) as smallest_published_part,
        max(case when not is_suppressed and is_total then cell_id end) as published_total
    from {{ members }}
    group by relation_id
),

{{ name }}_violations as (
    select
        relation_id,
        relation_kind,
        suppressed_members,
        suppressed_part_respondents,
        largest_suppressed_part,
        coalesce(smallest_published_part, published_total) as chosen_cell_id
    from {{ name }}_relations
    where
        suppressed_members = 1
        or (
            total_suppressed = 0
            and suppressed_members >= 2
            and case
                when relation_kind = 'item' then largest_suppressed_part
                else suppressed_part_respondents
            end < {{ var('min_reporting_n') }}
        )
)
{%- endmacro %}

{#- The reason a cell is suppressed, from the code the passes keep (0: primary, else the
    kind of relation that chose it first; ties in one pass go to subgroup, then level). -#}
{% macro suppression_reason_code(relation_kind) -%}
    case {{ relation_kind }} when 'subgroup' then 1 when 'level' then 2 when 'item' then 3 end
{%- endmacro %}

{% macro suppression_reason(code) -%}
    case {{ code }}
        when 0 then 'primary'
        when 1 then 'complementary_subgroup'
        when 2 then 'complementary_level'
        when 3 then 'complementary_item'
    end
{%- endmacro %}
