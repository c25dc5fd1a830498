{#-
  dbt's scratch tables on Snowflake (the empty table a unit test describes, an incremental
  model's or a snapshot's staging table) are created as transient tables in the model's
  schema instead of temporary tables. dbt drops each one as soon as it is done with it.
  Same results on Snowflake; the emulator CI builds on (fakesnow) cannot create a
  temporary table under a database and schema. Every other table is dbt-snowflake's own.
-#}
{% macro snowflake__create_table_as(temporary, relation, compiled_code, language='sql') -%}
    {%- if temporary and language == 'sql' -%}
        {{ dbt.snowflake__create_table_transient_sql(relation, compiled_code) }}
    {%- else -%}
        {{ dbt.snowflake__create_table_as(temporary, relation, compiled_code, language) }}
    {%- endif -%}
{%- endmacro %}
