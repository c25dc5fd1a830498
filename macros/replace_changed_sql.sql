{#-
  The statement of the incremental strategies that replace what changed (models
  partitioned by school year, models maintained by response): delete the rows being
  replaced, then append the new ones (dbt's append), run after the model's query has
  built its new rows and in one transaction, so that readers see the old rows or the new
  ones, never neither, and a build that fails leaves the old rows in place. On DuckDB the
  statement runs inside the transaction dbt-duckdb opens for the model; dbt-snowflake
  commits each statement on its own, so there the statement is an explicit transaction
  (as dbt-snowflake wraps its own strategies). `delete_sql` is empty when nothing is to be
  deleted (`dbt run --empty`).
-#}
{% macro replace_changed_sql(arg_dict, delete_sql) -%}
    {{ return(adapter.dispatch('replace_changed_sql', 'survey_warehouse')(arg_dict, delete_sql)) }}
{%- endmacro %}

{% macro default__replace_changed_sql(arg_dict, delete_sql) -%}
    {%- set statements = [] -%}
    {%- if delete_sql | trim -%}
        {%- do statements.append(delete_sql | trim) -%}
    {%- endif -%}
    {%- do statements.append(default__get_incremental_append_sql(arg_dict) | trim) -%}
    {{ return(statements | join(';\n')) }}
{%- endmacro %}

{% macro snowflake__replace_changed_sql(arg_dict, delete_sql) -%}
    {{ return(snowflake_dml_explicit_transaction(default__replace_changed_sql(arg_dict, delete_sql))) }}
{%- endmacro %}
