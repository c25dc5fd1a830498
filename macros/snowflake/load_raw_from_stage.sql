{#-
  `dbt run-operation load_raw_from_stage --target prod [--args '{stage: raw.replica_extracts}']`

  Snowflake's counterpart of `python -m orchestrate ingest`: loads new replica extract
  files from a stage into the raw schema, exactly once per file, the way the DuckDB
  ingester does (docs/snowflake.md has the set-up and the differences).

  The stage holds the extracts as delivered, one folder per table
  (<stage>/<table>/<table>__<start>__<end>__<part>.ndjson.gz). For each table:
    1. LIST the folder; a file already in raw.ingest_ledger with a different checksum
       refuses the whole run before anything loads (a delivered file must not change);
       files in the ledger with the same checksum are skipped.
    2. In one transaction per table:
       - COPY INTO raw.<table> the new files, with a transformation: envelope
         ($1:_op, $1:_ts::timestamp_ntz, $1:_seq), contract columns, the other keys as
         _extra (object_delete), metadata$filename and metadata$file_row_number;
         ON_ERROR = CONTINUE, so a bad line is skipped and the rest of its file loads.
         The envelope and primary-key columns are NOT NULL, so a line without them is
         rejected too.
       - _source_file becomes the bare file name (as in DuckDB) and an empty _extra null.
       - Rejected lines go to raw.quarantined_lines: the lines of each file that had
         errors (read back from the stage as plain text, one row per line) whose line
         number did not load, with a reason ('invalid JSON', 'not a JSON object', else
         COPY's first error for that file). VALIDATE() cannot do this: Snowflake's
         VALIDATE does not support COPY statements that transform data.
       - One raw.ingest_ledger row per file: lines, rows loaded, lines quarantined, size
         and the stage's checksum (stage_md5).
  Arguments: stage (default raw.replica_extracts), tables (default all), dry_run (print
  the statements instead of running them; nothing is listed or loaded).
-#}
{% macro load_raw_from_stage(stage='raw.replica_extracts', tables=none, dry_run=false) -%}
    {%- if target.type != 'snowflake' -%}
        {{ exceptions.raise_compiler_error(
            "load_raw_from_stage is for Snowflake targets (this is " ~ target.type ~ "). "
            ~ "On DuckDB, load extracts with `python -m orchestrate ingest --extracts DIR`.") }}
    {%- endif -%}
    {%- set contract = replica_contract() -%}
    {%- set tables = tables or (contract.keys() | list) -%}
    {%- set unknown = tables | reject('in', contract.keys() | list) | list -%}
    {%- if unknown -%}
        {{ exceptions.raise_compiler_error("load_raw_from_stage: unknown tables " ~ unknown
            ~ "; known: " ~ (contract.keys() | list)) }}
    {%- endif -%}

    {%- set setup = create_raw_tables_sql() + replica_file_formats_sql() -%}
    {%- if dry_run -%}
        {%- for sql in setup -%}{{ log(sql ~ ";\n", info=true) }}{%- endfor -%}
        {%- for table_name in tables -%}
            {%- set example = {'name': table_name ~ '__20240901T000000Z__20240902T000000Z__0000.ndjson.gz',
                'size': 0, 'md5': '<stage md5>'} -%}
            {{ log("-- raw." ~ table_name ~ ", for a new file " ~ example['name'] ~ " with rejected lines:", info=true) }}
            {{ log(list_replica_files_sql(table_name, stage) ~ ";\n", info=true) }}
            {{ log(copy_replica_table_sql(table_name, contract[table_name], stage, [example['name']]) ~ ";\n", info=true) }}
            {{ log(normalize_loaded_rows_sql(table_name, [example['name']]) ~ ";\n", info=true) }}
            {{ log(quarantine_rejected_lines_sql(table_name, stage, [{'name': example['name'],
                'first_error': "<COPY's first error>"}]) ~ ";\n", info=true) }}
            {{ log(ledger_rows_sql(table_name, [example], {}) ~ ";\n", info=true) }}
        {%- endfor -%}
        {{ return('') }}
    {%- endif -%}
    {%- for sql in setup -%}{%- do run_query(sql) -%}{%- endfor -%}

    {#- 1. Plan every table before loading any: new files, and refusals. -#}
    {%- set plans = {} -%}
    {%- set conflicts = [] -%}
    {%- for table_name in tables -%}
        {%- set listed = run_query(list_replica_files_sql(table_name, stage)) -%}
        {%- set loaded = run_query("select file_name, stage_md5 from raw.ingest_ledger where table_name = '"
            ~ table_name ~ "'") -%}
        {%- set ledger = {} -%}
        {%- for row in loaded.rows -%}{%- do ledger.update({row[0]: row[1]}) -%}{%- endfor -%}
        {%- set new_files = [] -%}
        {%- for row in listed.rows -%}
            {%- set file_name = row[0].split('/')[-1] -%}
            {%- if file_name not in ledger -%}
                {%- do new_files.append({'name': file_name, 'size': row[1], 'md5': row[2]}) -%}
            {%- elif ledger[file_name] != row[2] -%}
                {%- do conflicts.append(table_name ~ "/" ~ file_name ~ " (ledger " ~ ledger[file_name]
                    ~ ", stage " ~ row[2] ~ ")") -%}
            {%- endif -%}
        {%- endfor -%}
        {%- do plans.update({table_name: new_files}) -%}
    {%- endfor -%}
    {%- if conflicts -%}
        {{ exceptions.raise_compiler_error(
            "Refused: these files were loaded before with different content, and a delivered file "
            ~ "must not change. Nothing was loaded.\n  " ~ conflicts | join("\n  ")
            ~ "\nAsk the platform team why the file changed; remove the new copy from the stage to "
            ~ "go on loading the rest.") }}
    {%- endif -%}

    {#- 2. Load each table's new files in one transaction, 1000 files per COPY. -#}
    {%- for table_name in tables -%}
        {%- set new_files = plans[table_name] -%}
        {%- for batch in new_files | batch(1000) -%}
            {%- do run_query("begin") -%}
            {%- set copied = run_query(copy_replica_table_sql(
                table_name, contract[table_name], stage, batch | map(attribute='name') | list)) -%}
            {%- set results = {} -%}
            {%- if 'file' in copied.column_names -%}
                {%- for row in copied.rows -%}
                    {%- do results.update({row['file'].split('/')[-1]: row}) -%}
                {%- endfor -%}
            {%- endif -%}
            {%- set names = batch | map(attribute='name') | list -%}
            {%- do run_query(normalize_loaded_rows_sql(table_name, names)) -%}
            {%- set with_errors = [] -%}
            {%- for name in names if name in results and results[name]['errors_seen'] | int > 0 -%}
                {%- do with_errors.append({'name': name, 'first_error': results[name]['first_error']}) -%}
            {%- endfor -%}
            {%- if with_errors -%}
                {%- do run_query(quarantine_rejected_lines_sql(table_name, stage, with_errors)) -%}
            {%- endif -%}
            {%- do run_query(ledger_rows_sql(table_name, batch, results)) -%}
            {%- do run_query("commit") -%}
            {{ log("load_raw_from_stage: raw." ~ table_name ~ ": " ~ names | length ~ " files, "
                ~ with_errors | length ~ " with rejected lines", info=true) }}
        {%- endfor -%}
        {%- if not new_files -%}
            {{ log("load_raw_from_stage: raw." ~ table_name ~ ": no new files", info=true) }}
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}


{#- NDJSON for COPY (one JSON object per line) and plain lines for reading rejects back. -#}
{% macro replica_file_formats_sql(schema='raw') -%}
    {{ return([
        "create file format if not exists " ~ schema ~ ".replica_ndjson
    type = json compression = auto strip_outer_array = false",
        "create file format if not exists " ~ schema ~ ".replica_lines
    type = csv compression = auto field_delimiter = none record_delimiter = '\\n'
    field_optionally_enclosed_by = none escape_unenclosed_field = none skip_blank_lines = false",
    ]) }}
{%- endmacro %}


{% macro list_replica_files_sql(table_name, stage) -%}
list @{{ stage }}/{{ table_name }}/ pattern = '.*{{ table_name }}__[0-9]{8}T[0-9]{6}Z__[0-9]{8}T[0-9]{6}Z__[0-9]{4}[.]ndjson[.]gz'
{%- endmacro %}


{% macro copy_replica_table_sql(table_name, table, stage, file_names) -%}
    {%- set known = ['_op', '_ts', '_seq'] + (table['columns'] | map('first') | list) -%}
    {%- set extracted = [] -%}
    {%- for column_name, column_type in table['columns'] -%}
        {%- do extracted.append("$1:" ~ column_name ~ "::" ~ column_type) -%}
    {%- endfor -%}
copy into raw.{{ table_name }} (
    _op, _ts, _seq, {{ table['columns'] | map('first') | join(', ') }}, _extra, _source_file, _source_line
)
from (
    select
        case when $1:_op::varchar in ('c', 'u', 'd') then $1:_op::varchar end,
        $1:_ts::timestamp_ntz,
        $1:_seq::bigint,
        {{ extracted | join(',\n        ') }},
        object_delete($1, '{{ known | join("', '") }}'),
        metadata$filename,
        metadata$file_row_number
    from @{{ stage }}/{{ table_name }}/
)
files = ('{{ file_names | join("', '") }}')
file_format = (format_name = 'raw.replica_ndjson')
on_error = continue
force = true
{%- endmacro %}


{#- The rows just loaded: the bare file name in _source_file, and null for an empty _extra. -#}
{% macro normalize_loaded_rows_sql(table_name, file_names) -%}
update raw.{{ table_name }}
set
    _source_file = split_part(_source_file, '/', -1),
    _extra = iff(array_size(object_keys(_extra)) = 0, null, _extra)
where _source_file like '%/%'
    and split_part(_source_file, '/', -1) in ('{{ file_names | join("', '") }}')
{%- endmacro %}


{% macro quarantine_rejected_lines_sql(table_name, stage, files) -%}
    {%- set reasons = [] -%}
    {%- for file in files -%}
        {%- do reasons.append("('" ~ file['name'] ~ "', '" ~ ((file['first_error'] or 'rejected by COPY') | replace("'", "''")) ~ "')") -%}
    {%- endfor -%}
insert into raw.quarantined_lines (source_file, line_number, table_name, reason, line, quarantined_at)
with
copy_errors (file_name, first_error) as (
    select * from values {{ reasons | join(', ') }}
),
lines as (
    select
        split_part(metadata$filename, '/', -1) as file_name,
        metadata$file_row_number as line_number,
        $1 as line
    from @{{ stage }}/{{ table_name }}/ (
        file_format => 'raw.replica_lines',
        pattern => '.*({{ files | map(attribute='name') | map('replace', '.', '[.]') | join('|') }})'
    )
)
select
    lines.file_name,
    lines.line_number,
    '{{ table_name }}',
    case
        when lines.line is null or trim(lines.line) = '' then 'empty line'
        when try_parse_json(lines.line) is null then 'invalid JSON'
        when typeof(try_parse_json(lines.line)) <> 'OBJECT' then 'not a JSON object'
        else 'rejected by COPY: ' || copy_errors.first_error
    end,
    lines.line,
    convert_timezone('UTC', current_timestamp())::timestamp_ntz
from lines
inner join copy_errors
    on lines.file_name = copy_errors.file_name
where not exists (
    select 1
    from raw.{{ table_name }} as loaded
    where loaded._source_file = lines.file_name
        and loaded._source_line = lines.line_number
)
{%- endmacro %}


{% macro ledger_rows_sql(table_name, files, results) -%}
    {%- set rows = [] -%}
    {%- for file in files -%}
        {%- set result = results.get(file['name']) -%}
        {%- set parts = file['name'].split('__') -%}
        {%- set parsed = (result['rows_parsed'] | int) if result else 0 -%}
        {%- set loaded = (result['rows_loaded'] | int) if result else 0 -%}
        {%- set errors = (result['errors_seen'] | int) if result else 0 -%}
        {%- do rows.append("('" ~ file['name'] ~ "', '" ~ table_name ~ "', "
            ~ "to_timestamp_ntz('" ~ parts[1] ~ "', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
            ~ "to_timestamp_ntz('" ~ parts[2] ~ "', 'YYYYMMDD\"T\"HH24MISS\"Z\"'), "
            ~ (parts[3].split('.')[0] | int) ~ ", null, " ~ (file['size'] | int) ~ ", "
            ~ [parsed, loaded + errors] | max ~ ", " ~ loaded ~ ", " ~ errors ~ ", "
            ~ "convert_timezone('UTC', current_timestamp())::timestamp_ntz, '" ~ file['md5'] ~ "')") -%}
    {%- endfor -%}
insert into raw.ingest_ledger (
    file_name, table_name, interval_start, interval_end, part, sha256, size_bytes,
    line_count, rows_loaded, lines_quarantined, loaded_at, stage_md5
)
values
    {{ rows | join(',\n    ') }}
{%- endmacro %}
