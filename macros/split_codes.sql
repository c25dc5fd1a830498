{#-
  One row per code in a multi-valued column: `codes_column` split on any of the contract's
  separators (`,` `;` `|`), each code trimmed, empty codes dropped, a null column giving
  no rows. Returns the key columns and `code`.
-#}
{% macro split_codes(relation, key_columns, codes_column) -%}
    {{ return(adapter.dispatch('split_codes', 'survey_warehouse')(relation, key_columns, codes_column)) }}
{%- endmacro %}

{% macro default__split_codes(relation, key_columns, codes_column) -%}
    select {{ key_columns | join(', ') }}, trim(code) as code
    from (
        select
            {{ key_columns | join(', ') }},
            unnest(string_split(translate({{ codes_column }}, ';|', ',,'), ',')) as code
        from {{ relation }}
    ) as split
    where trim(code) <> ''
{%- endmacro %}

{% macro snowflake__split_codes(relation, key_columns, codes_column) -%}
    select
        {%- for column in key_columns %}
        source.{{ column }},
        {%- endfor %}
        trim(split.value::varchar) as code
    from {{ relation }} as source,
        lateral flatten(input => split(translate(source.{{ codes_column }}, ';|', ',,'), ',')) as split
    where trim(split.value::varchar) <> ''
{%- endmacro %}
