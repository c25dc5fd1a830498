{#-
  A question's response_options (a JSON array of {"value": integer, "label": string})
  as rows: one per option, with its 1-based display position. `relation` is a relation
  or CTE name with columns `key_column` and `json_column`; rows whose options are null
  (open-ended questions) give no rows.
-#}
{% macro unnest_response_options(relation, key_column, json_column) -%}
    {{ return(adapter.dispatch('unnest_response_options', 'survey_warehouse')(relation, key_column, json_column)) }}
{%- endmacro %}

{% macro default__unnest_response_options(relation, key_column, json_column) -%}
    select
        questions.{{ key_column }},
        cast(options.key as integer) + 1 as option_position,
        try_cast(json_extract_string(options.value, '$.value') as integer) as option_value,
        json_extract_string(options.value, '$.label') as option_label
    from {{ relation }} as questions,
        json_each(questions.{{ json_column }}) as options
    where questions.{{ json_column }} is not null
{%- endmacro %}

{% macro snowflake__unnest_response_options(relation, key_column, json_column) -%}
    select
        questions.{{ key_column }},
        options.index + 1 as option_position,
        try_to_number(options.value:value::varchar) as option_value,
        options.value:label::varchar as option_label
    from {{ relation }} as questions,
        lateral flatten(input => try_parse_json(to_varchar(questions.{{ json_column }}))) as options
    where questions.{{ json_column }} is not null
{%- endmacro %}
