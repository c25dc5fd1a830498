{#-
  How a district's code is matched to a crosswalk row: lower case, every whitespace
  character removed ("Grade 1", "grade1" and " GRADE  1 " all match).
-#}
{% macro code_match_key(expression) -%}
    {{ return(adapter.dispatch('code_match_key', 'survey_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__code_match_key(expression) -%}
    lower(regexp_replace({{ expression }}, '[[:space:]]+', '', 'g'))
{%- endmacro %}

{% macro snowflake__code_match_key(expression) -%}
    lower(regexp_replace({{ expression }}, '[[:space:]]+', ''))
{%- endmacro %}
