{#-
  Snapshots on the Snowflake emulator (on_snowflake_emulator): dbt's snapshot merge
  written as an UPDATE of the rows that closed (updated or deleted at the source) and an
  INSERT of the new versions, in one transaction: the same rows as dbt's MERGE, which the
  emulator (fakesnow) fails on ("ambiguous reference to column DBT_SCD_ID"). Every other
  target runs dbt-snowflake's own MERGE.
-#}
{% macro snowflake__snapshot_merge_sql(target, source, insert_cols) -%}
    {%- if not on_snowflake_emulator() -%}
        {{ return(dbt.snowflake__snapshot_merge_sql(target, source, insert_cols)) }}
    {%- endif -%}
    {%- set columns = config.get("snapshot_table_column_names") or get_snapshot_table_column_names() -%}
    {%- set insert_cols_csv = insert_cols | join(', ') -%}
    {%- set current_dest = "dbt_internal_dest." ~ columns.dbt_valid_to -%}
    {%- set dml -%}
update {{ target.render() }} as dbt_internal_dest
set {{ columns.dbt_valid_to }} = dbt_internal_source.{{ columns.dbt_valid_to }}
from {{ source }} as dbt_internal_source
where dbt_internal_source.{{ columns.dbt_scd_id }} = dbt_internal_dest.{{ columns.dbt_scd_id }}
    {%- if config.get("dbt_valid_to_current") %}
    and ({{ equals(current_dest, config.get('dbt_valid_to_current') | trim) }} or {{ current_dest }} is null)
    {%- else %}
    and {{ current_dest }} is null
    {%- endif %}
    and dbt_internal_source.dbt_change_type in ('update', 'delete');

insert into {{ target.render() }} ({{ insert_cols_csv }})
select {{ insert_cols_csv }}
from {{ source }} as dbt_internal_source
where dbt_internal_source.dbt_change_type = 'insert'
    and not exists (
        select 1
        from {{ target.render() }} as dbt_internal_dest
        where dbt_internal_dest.{{ columns.dbt_scd_id }} = dbt_internal_source.{{ columns.dbt_scd_id }}
    )
    {%- endset -%}
    {{ return(snowflake_dml_explicit_transaction(dml)) }}
{%- endmacro %}
