{#-
  The CTEs `reporting_levels` and `grouped` that topic and item results share: every
  scored row of `scored` (a CTE with response_id, school_year, respondent_type, school_id,
  district_id, substantive_answers, favorable_answers) once per subgroup of its response
  (`subgroups`, a CTE of int_respondent_subgroups_assigned) and per reporting level, with
  the entity it counts toward (its school, or its district); `columns` are the scored
  row's own columns to carry (the measure's keys and its score). The models then
  aggregate `grouped` by their grain. Ends with a comma: more CTEs follow.
-#}
{% macro results_by_reporting_level(scored, subgroups, columns) -%}
reporting_levels as (
    select 'school' as reporting_level
    union all
    select 'district' as reporting_level
),

grouped as (
    select
        {{ scored }}.school_year,
        {{ scored }}.respondent_type,
        reporting_levels.reporting_level,
        {{ scored }}.district_id,
        {%- for column in columns %}
        {{ scored }}.{{ column }},
        {%- endfor %}
        {{ subgroups }}.subgroup_category,
        {{ subgroups }}.subgroup_value,
        {{ scored }}.substantive_answers,
        {{ scored }}.favorable_answers,
        case
            when reporting_levels.reporting_level = 'school' then {{ scored }}.school_id
            else {{ scored }}.district_id
        end as entity_id
    from {{ scored }}
    inner join {{ subgroups }}
        on {{ scored }}.response_id = {{ subgroups }}.response_id
    cross join reporting_levels
),
{%- endmacro %}
