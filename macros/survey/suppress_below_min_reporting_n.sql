{#-
  A result number, or null when the row comes from fewer than var('min_reporting_n')
  respondents (default 10). `respondents` is the row's respondent count expression.
-#}
{% macro suppress_below_min_reporting_n(expression, respondents) -%}
    case when {{ respondents }} >= {{ var('min_reporting_n', 10) }} then {{ expression }} end
{%- endmacro %}

{% macro is_below_min_reporting_n(respondents) -%}
    ({{ respondents }} < {{ var('min_reporting_n', 10) }})
{%- endmacro %}
