{#-
  A result number, or null when the row comes from fewer than var('min_reporting_n')
  respondents (default 10). `respondents` is the row's respondent count expression.
-#}
{% macro suppress_below_min_reporting_n(expression, respondents) -%}
    case when {{ respondents }} >= {{ var('min_reporting_n') }} then {{ expression }} end
{%- endmacro %}

{% macro is_below_min_reporting_n(respondents) -%}
    ({{ respondents }} < {{ var('min_reporting_n') }})
{%- endmacro %}

{#-
  A result number, or null when its row is suppressed (primary or complementary:
  int_result_cells_suppressed); `is_suppressed` is the row's flag expression.
-#}
{% macro unless_suppressed(expression, is_suppressed='suppression.is_suppressed') -%}
    case when not {{ is_suppressed }} then {{ expression }} end
{%- endmacro %}
