{#-
  tmp_relation_type for incremental models: on the Snowflake emulator
  (on_snowflake_emulator) each batch is built in a transient table, which its
  delete+insert needs; every other target keeps its adapter's default.
-#}
{% macro incremental_tmp_relation_type() -%}
    {{ return('transient' if on_snowflake_emulator() else none) }}
{%- endmacro %}
