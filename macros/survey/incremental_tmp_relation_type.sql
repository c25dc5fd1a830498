{#-
  tmp_relation_type for incremental models: on the Snowflake emulator
  (on_snowflake_emulator) each batch is built in a transient table, which a strategy
  that deletes before it inserts needs (delete+insert, replace_changed_sql.sql); every
  other target keeps its adapter's default (a temporary table, on Snowflake, for those).
-#}
{% macro incremental_tmp_relation_type() -%}
    {{ return('transient' if on_snowflake_emulator() else none) }}
{%- endmacro %}
