{#-
  Optional, Snowflake only, off by default (var district_row_access_policy: false):
  a row access policy that limits a district-scoped reader role to its own districts.

  Roles listed in <database>.governance.district_reader_scopes (role_name, district_id)
  see only the rows of their districts in every mart that has a district_id column; any
  other role sees every row, as grants allow. The role is the session's primary role
  (current_role()), so an administrator whose role merely inherits a district role is not
  limited. The table is filled from the var district_reader_scopes when that is set
  (e.g. {"DISTRICT_D001_READER": ["d-001"]}); otherwise it is left as administrators
  keep it.

  Runs as a post-hook on every mart (dbt_project.yml), because `create or replace`
  drops the policy a table had. To (re)apply to the marts already built, without a build:
    dbt run-operation apply_district_row_access_policy --target prod \
      --vars '{district_row_access_policy: true}'
  `--args '{dry_run: true}'` prints the statements instead of running them (with the var
  on or off). On DuckDB, or with the var off, it does nothing. See docs/snowflake.md.
-#}
{% macro apply_district_row_access_policy(relation=none, dry_run=false) -%}
    {{ return(adapter.dispatch('apply_district_row_access_policy', 'survey_warehouse')(relation, dry_run)) }}
{%- endmacro %}

{% macro default__apply_district_row_access_policy(relation=none, dry_run=false) -%}
{%- endmacro %}

{% macro snowflake__apply_district_row_access_policy(relation=none, dry_run=false) -%}
    {%- if not execute or not (var('district_row_access_policy') or dry_run) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set as_hook = relation is none and model is defined and model is not none
        and model.resource_type == 'model' -%}
    {%- set relations = [this] if as_hook else ([relation] if relation else marts_with_district_id()) -%}
    {%- set statements = district_row_access_policy_setup_sql() -%}
    {%- for target_relation in relations -%}
        {%- set columns = adapter.get_columns_in_relation(target_relation) | map(attribute='name') | map('lower') | list -%}
        {%- if 'district_id' in columns -%}
            {%- do statements.append("alter table " ~ target_relation ~ " drop all row access policies") -%}
            {%- do statements.append("alter table " ~ target_relation ~ " add row access policy "
                ~ district_row_access_policy_name() ~ " on (district_id)") -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if as_hook and not dry_run -%}
        {{ return(statements | join(";\n")) }}
    {%- endif -%}
    {%- for sql in statements -%}
        {%- if dry_run -%}
            {{ log(sql ~ ";", info=true) }}
        {%- else -%}
            {%- do run_query(sql) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}

{% macro district_row_access_policy_name() -%}
    {{ return(target.database ~ "." ~ generate_schema_name('governance', none) ~ ".district_scope") }}
{%- endmacro %}

{% macro district_row_access_policy_setup_sql() -%}
    {%- set schema = target.database ~ "." ~ generate_schema_name('governance', none) -%}
    {%- set statements = [
        "create schema if not exists " ~ schema,
        "create table if not exists " ~ schema ~ ".district_reader_scopes (
    role_name varchar not null,
    district_id varchar not null
)",
    ] -%}
    {%- set scopes = var('district_reader_scopes') -%}
    {%- if scopes -%}
        {%- set rows = [] -%}
        {%- for role_name, district_ids in scopes.items() -%}
            {%- for district_id in district_ids -%}
                {%- do rows.append("('" ~ (role_name | upper | replace("'", "''")) ~ "', '"
                    ~ (district_id | replace("'", "''")) ~ "')") -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- do statements.append("delete from " ~ schema ~ ".district_reader_scopes") -%}
        {%- do statements.append("insert into " ~ schema ~ ".district_reader_scopes (role_name, district_id) values "
            ~ rows | join(", ")) -%}
    {%- endif -%}
    {%- do statements.append("create row access policy if not exists " ~ district_row_access_policy_name() ~ "
    as (row_district_id varchar) returns boolean ->
    not exists (
        select 1 from " ~ schema ~ ".district_reader_scopes as scope
        where scope.role_name = current_role()
    )
    or exists (
        select 1 from " ~ schema ~ ".district_reader_scopes as scope
        where scope.role_name = current_role()
            and scope.district_id = row_district_id
    )") -%}
    {{ return(statements) }}
{%- endmacro %}

{% macro marts_with_district_id() -%}
    {%- set marts_schema = generate_schema_name('marts', none) -%}
    {%- set found = run_query(
        "select table_name from " ~ target.database ~ ".information_schema.columns
        where table_schema = upper('" ~ marts_schema ~ "') and column_name = 'DISTRICT_ID'
        order by table_name") -%}
    {%- set relations = [] -%}
    {%- for row in found.rows -%}
        {%- do relations.append(api.Relation.create(database=target.database, schema=marts_schema,
            identifier=row[0] | lower, type='table')) -%}
    {%- endfor -%}
    {{ return(relations) }}
{%- endmacro %}
