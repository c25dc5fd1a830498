{#-
  `dbt run-operation create_raw_tables --target prod`: the raw schema on Snowflake, shaped
  like the DuckDB ingester's (orchestrate/ingest.py): one change-log table per replica
  table (envelope _op/_ts/_seq, contract columns, _extra, _source_file, _source_line),
  raw.ingest_ledger and raw.quarantined_lines. Idempotent: existing tables are kept.

  Differences from DuckDB, on purpose: the envelope and primary-key columns are NOT NULL, so
  that COPY rejects a line without them (DuckDB's ingester quarantines such lines itself);
  JSON columns are VARIANT; the ledger's sha256 and content_sha256 are null (Snowflake
  cannot hash a staged file) and stage_md5 holds the stage's own checksum instead.
  load_raw_from_stage calls this first.
-#}
{% macro create_raw_tables(schema='raw') -%}
    {%- if target.type != 'snowflake' -%}
        {{ exceptions.raise_compiler_error(
            "create_raw_tables is for Snowflake targets (this is " ~ target.type ~ "). "
            ~ "On DuckDB the raw tables are created by `python -m orchestrate ingest`.") }}
    {%- endif -%}
    {%- for sql in create_raw_tables_sql(schema) %}
        {%- do run_query(sql) -%}
    {%- endfor %}
    {{ log("create_raw_tables: " ~ (replica_contract() | length) ~ " replica tables, "
           ~ schema ~ ".ingest_ledger and " ~ schema ~ ".quarantined_lines are in place", info=true) }}
{%- endmacro %}

{% macro create_raw_tables_sql(schema='raw') -%}
    {%- set statements = ["create schema if not exists " ~ schema] -%}
    {%- for table_name, table in replica_contract().items() -%}
        {%- set columns = [] -%}
        {%- for column_name, column_type in table['columns'] -%}
            {%- do columns.append(column_name ~ " " ~ column_type
                ~ (" not null" if column_name in table['primary_key'] else "")) -%}
        {%- endfor -%}
        {%- do statements.append(
            "create table if not exists " ~ schema ~ "." ~ table_name ~ " (\n"
            ~ "  _op varchar not null,\n"
            ~ "  _ts timestamp_ntz not null,\n"
            ~ "  _seq bigint not null,\n  "
            ~ columns | join(",\n  ") ~ ",\n"
            ~ "  _extra variant,\n"
            ~ "  _source_file varchar,\n"
            ~ "  _source_line bigint\n)") -%}
    {%- endfor -%}
    {%- do statements.append(
        "create table if not exists " ~ schema ~ ".ingest_ledger (
  file_name varchar not null primary key,
  table_name varchar not null,
  interval_start timestamp_ntz not null,
  interval_end timestamp_ntz not null,
  part integer not null,
  sha256 varchar,
  size_bytes bigint not null,
  line_count bigint not null,
  rows_loaded bigint not null,
  lines_quarantined bigint not null,
  loaded_at timestamp_ntz not null,
  stage_md5 varchar,
  content_sha256 varchar
)") -%}
    {%- do statements.append(
        "create table if not exists " ~ schema ~ ".quarantined_lines (
  source_file varchar not null,
  line_number bigint not null,
  table_name varchar not null,
  reason varchar not null,
  line varchar,
  quarantined_at timestamp_ntz not null
)") -%}
    {{ return(statements) }}
{%- endmacro %}
