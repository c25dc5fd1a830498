{#-
  persist_docs on the Snowflake emulator (on_snowflake_emulator): two changes to
  dbt-snowflake's macros that give the same comments and that the emulator can run.
  Every other target runs dbt-snowflake's own macros.

  - Table and view descriptions: each straight apostrophe is written as a typographic one
    (’). fakesnow stores table comments by splicing them into a quoted string and fails on
    a straight apostrophe.
  - Column descriptions: one `alter table … alter "col" comment $$…$$` statement per column
    instead of one statement listing every column, which fakesnow cannot parse.
-#}
{% macro snowflake__alter_relation_comment(relation, relation_comment) -%}
    {%- if not on_snowflake_emulator() -%}
        {{ return(dbt.snowflake__alter_relation_comment(relation, relation_comment)) }}
    {%- endif -%}
    {{ return(dbt.snowflake__alter_relation_comment(relation, relation_comment | replace("'", "’"))) }}
{%- endmacro %}

{% macro snowflake__alter_column_comment(relation, column_dict) -%}
    {%- if not on_snowflake_emulator() -%}
        {{ return(dbt.snowflake__alter_column_comment(relation, column_dict)) }}
    {%- endif -%}
    {%- set existing_columns = adapter.get_columns_in_relation(relation) | map(attribute="name") | list -%}
    {%- set documented = validate_doc_columns(relation, column_dict, existing_columns) -%}
    {%- set relation_type = "table" if relation.is_dynamic_table else relation.type -%}
    {%- for column_name in existing_columns %}
    alter {{ relation.get_ddl_prefix_for_alter() }} {{ relation_type }} {{ relation.render() }}
        alter {{ get_column_comment_sql(column_name, documented) }};
    {%- endfor %}
{%- endmacro %}
