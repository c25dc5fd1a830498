{#-
  Schemas are named for their layer (staging, intermediate, marts, seeds) on every target,
  as the marts contract requires. A shared Snowflake account can separate people or pull
  requests with DBT_SCHEMA_PREFIX (e.g. `pr_123` gives `pr_123_marts`).
-#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set prefix = env_var('DBT_SCHEMA_PREFIX', '') | trim -%}
    {%- set base = (custom_schema_name or target.schema) | trim -%}
    {%- if prefix -%}{{ prefix }}_{{ base }}{%- else -%}{{ base }}{%- endif -%}
{%- endmacro %}
