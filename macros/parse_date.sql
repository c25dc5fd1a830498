{#- A `YYYY-MM-DD` string as a date, or null when it is not one. -#}
{% macro parse_date(expression) -%}
    {{ return(adapter.dispatch('parse_date', 'survey_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__parse_date(expression) -%}
    try_cast({{ expression }} as date)
{%- endmacro %}

{% macro snowflake__parse_date(expression) -%}
    try_to_date({{ expression }}, 'YYYY-MM-DD')
{%- endmacro %}
