{#-
  Emulator only (on_snowflake_emulator): dbt's scratch tables (the empty table a unit
  test describes, an incremental model's or a snapshot's staging table) are created as
  transient tables in the model's schema instead of temporary tables, which the emulator
  cannot create under a database and schema. dbt drops each one as soon as it is done with
  it, so the results are the same. Every other target runs dbt-snowflake's own macro.
-#}
{% macro snowflake__create_table_as(temporary, relation, compiled_code, language='sql') -%}
    {%- if temporary and language == 'sql' and on_snowflake_emulator() -%}
        {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
    {%- else -%}
        {{ dbt.snowflake__create_table_as(temporary, relation, compiled_code, language) }}
    {%- endif -%}
{%- endmacro %}
