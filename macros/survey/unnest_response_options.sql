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

{#- Positions come from flatten's values over array_generate_range, not from flatten's
    index: same result on Snowflake, and the emulator CI builds on (fakesnow) numbers
    flatten's index in no particular order. -#}
{% macro snowflake__unnest_response_options(relation, key_column, json_column) -%}
    select
        questions.{{ key_column }},
        positions.value::integer + 1 as option_position,
        try_to_number(get(questions.options, positions.value::integer):value::varchar) as option_value,
        get(questions.options, positions.value::integer):label::varchar as option_label
    from (
        select
            {{ key_column }},
            try_parse_json(to_varchar({{ json_column }})) as options
        from {{ relation }}
        where {{ json_column }} is not null
    ) as questions,
        lateral flatten(input => array_generate_range(0, array_size(questions.options)::integer)) as positions
{%- endmacro %}
