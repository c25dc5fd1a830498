{#-
  Statements that replace a model's rows in one transaction, run after the model's query
  has built its new rows: readers see the old rows or the new ones, never neither, and a
  build that fails leaves the old rows in place. On DuckDB they run inside the
  transaction dbt-duckdb opens for the model; dbt-snowflake commits each statement on its
  own, so there they are an explicit transaction (as dbt-snowflake wraps its own
  strategies). Empty statements are left out (a replace strategy's delete under
  `dbt run --empty`).
-#}
{% macro in_one_transaction(statements) -%}
    {{ return(adapter.dispatch('in_one_transaction', 'survey_warehouse')(statements)) }}
{%- endmacro %}

{% macro default__in_one_transaction(statements) -%}
    {%- set kept = [] -%}
    {%- for statement in statements if statement | trim -%}
        {%- do kept.append(statement | trim) -%}
    {%- endfor -%}
    {{ return(kept | join(';\n')) }}
{%- endmacro %}

{% macro snowflake__in_one_transaction(statements) -%}
    {{ return(snowflake_dml_explicit_transaction(default__in_one_transaction(statements))) }}
{%- endmacro %}

{#- The incremental strategies that replace what changed (models partitioned by school
    year, models maintained by response): delete the rows being replaced (`delete_sql`),
    then append the new ones (dbt's append). -#}
{% macro replace_changed_sql(arg_dict, delete_sql) -%}
    {{ return(in_one_transaction([
        delete_sql,
        get_insert_into_sql(arg_dict["target_relation"], arg_dict["temp_relation"], arg_dict["dest_columns"])
    ])) }}
{%- endmacro %}

{#- The incremental strategy of int_question_responses_scored: dbt's delete+insert by
    unique key, then the tombstones it inserted (answers with no current answer left,
    is_deleted) deleted in the same transaction, so that fct_question_responses never
    shows a deleted answer. -#}
{% macro get_incremental_delete_insert_without_tombstones_sql(arg_dict) -%}
    {%- set target_relation = arg_dict["target_relation"] -%}
    {{ return(in_one_transaction([
        delete_insert_statements(arg_dict),
        "delete from " ~ target_relation ~ " where is_deleted"
    ])) }}
{%- endmacro %}

{#- dbt's delete+insert statements for the adapter, not yet in a transaction. -#}
{% macro delete_insert_statements(arg_dict) -%}
    {{ return(adapter.dispatch('delete_insert_statements', 'survey_warehouse')(arg_dict)) }}
{%- endmacro %}

{% macro default__delete_insert_statements(arg_dict) -%}
    {{ return(get_delete_insert_merge_sql(arg_dict["target_relation"], arg_dict["temp_relation"],
        arg_dict["unique_key"], arg_dict["dest_columns"], arg_dict["incremental_predicates"])) }}
{%- endmacro %}

{#- dbt-snowflake's own wraps them in a transaction already: its unwrapped default. -#}
{% macro snowflake__delete_insert_statements(arg_dict) -%}
    {{ return(default__get_delete_insert_merge_sql(arg_dict["target_relation"], arg_dict["temp_relation"],
        arg_dict["unique_key"], arg_dict["dest_columns"], arg_dict["incremental_predicates"])) }}
{%- endmacro %}
