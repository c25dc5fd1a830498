{#-
  Models partitioned by school year: the results chain (the aggregates, their
  suppression, the results marts, reliability). The per-response tables before it are
  maintained by response instead (response_deltas.sql): replacing the current year (a
  third of them) cost DuckDB more than building them whole, a day's responses are a few
  thousand. On an incremental run such a
  model rebuilds only the school years whose inputs changed, and replaces each of them
  whole: its query selects those years again, then one transaction deletes every row of
  them and appends the new rows (incremental strategy replace_changed_school_years), so a
  year that ends with no rows is emptied too, and readers never see a year missing, not
  even when the build fails (replace_changed_sql). Its config:

    materialized='incremental', incremental_strategy='replace_changed_school_years',
    on_schema_change='fail', tmp_relation_type=incremental_tmp_relation_type(),
    pre_hook="{{ school_year_build_started() }}",
    post_hook="{{ school_year_build_finished() }}"

  and its query filters its inputs with in_changed_school_years('<school_year column>')
  (true on a full build). It reads `-- depends_on:` int_school_year_builds and
  int_ingested_files_school_years.

  Which years changed, for this model: the years of the files loaded into the warehouse
  (ingest ledger, loaded_at) after the ledger high-water its last successful build went
  through, up to the high-water this build started from (int_ingested_files_school_years
  says which years a file touches; a file it has not mapped counts as every year).
  Each model keeps its own high-water (int_school_year_builds), advanced by its post-hook
  only after its rows are in: a build that fails, or is not selected, leaves the model's
  high-water where it was and the next build rebuilds every year since. A model without
  a recorded high-water rebuilds every year. Rows whose school_year is null form the
  partition ''. Project changes (a model, seed or macro edited) are not data: the
  orchestrator builds them with --full-refresh (orchestrate/scope.py, dbt_args).
-#}

{#- The build log, as a plain relation: `dbt run --empty` renders a ref as an empty
    subquery, which cannot be inserted into. -#}
{% macro school_year_builds() -%}
    {%- set builds = ref('int_school_year_builds') -%}
    {{ return(api.Relation.create(database=builds.database, schema=builds.schema, identifier=builds.identifier)) }}
{%- endmacro %}

{#- Whether the build log is this target's own: a build that defers to another warehouse
    (pr-check's pr_* schemas read production's unchanged models) neither writes into
    production's log nor trusts it; it rebuilds every year. -#}
{% macro school_year_builds_are_ours() -%}
    {%- set builds = ref('int_school_year_builds') -%}
    {{ return((builds.database | lower) == (this.database | lower)
              and (builds.schema | lower) == (generate_schema_name('intermediate', none) | trim | lower)) }}
{%- endmacro %}

{#- The name a model's builds are logged under: its schema and table, so that a build of
    the same model into other schemas (pr-check's pr_*) never stands for this one. -#}
{% macro school_year_build_name(relation=none) -%}
    {%- set relation = relation or this -%}
    {{ return(relation.schema ~ '.' ~ relation.identifier) }}
{%- endmacro %}

{#- A build's first row: the high-water it builds through. A build from scratch (a full
    refresh, or no table yet) adds a second row without a high-water, which the post-hook
    finishes with the first: the data tests of the models maintained by response then
    check every row (rebuilt_responses, response_deltas.sql). -#}
{% macro school_year_build_started() -%}
    {%- if not school_year_builds_are_ours() %}{{ return('') }}{% endif -%}
    insert into {{ school_year_builds() }} (model_name, invocation_id, ingested_through, is_built)
    select
        '{{ school_year_build_name() }}',
        '{{ invocation_id }}',
        max(loaded_at),
        false
    from {{ source('replica', 'ingest_ledger') }}
    {%- if not is_incremental() %}
    union all
    select
        '{{ school_year_build_name() }}',
        '{{ invocation_id }}',
        cast(null as timestamp),
        false
    {%- endif %}
{%- endmacro %}

{% macro school_year_build_finished() -%}
    {%- if flags.EMPTY or not school_year_builds_are_ours() %}{{ return('') }}{% endif -%}
    insert into {{ school_year_builds() }} (model_name, invocation_id, ingested_through, is_built)
    select
        model_name,
        invocation_id,
        ingested_through,
        true
    from {{ school_year_builds() }}
    where model_name = '{{ school_year_build_name() }}'
        and invocation_id = '{{ invocation_id }}'
        and not is_built
{%- endmacro %}

{#- The files loaded after this model's last successful build, up to the high-water this
    build started from (school_year_build_started). -#}
{% macro files_since_last_build() -%}
    {{ ledger_files_between(ref('int_school_year_builds'), [school_year_build_name()], 'is_built',
                            "invocation_id = '" ~ invocation_id ~ "' and not is_built") }}
{%- endmacro %}

{#- The ledger's files loaded after the latest high-water of the build-log rows (of the
    names given) that meet `after`, up to the latest of those that meet `through`. -#}
{% macro ledger_files_between(builds, build_names, after, through) -%}
    select
        ledger.file_name,
        ledger.table_name
    from {{ source('replica', 'ingest_ledger') }} as ledger
    inner join (
        select
            max(case when {{ after }} then ingested_through end) as after_high_water,
            max(case when {{ through }} then ingested_through end) as through_high_water
        from {{ builds }}
        where model_name in ('{{ build_names | join("', '") }}')
    ) as build_window
        on ledger.loaded_at > build_window.after_high_water
        and ledger.loaded_at <= build_window.through_high_water
{%- endmacro %}

{#- The school years this build of the model rebuilds: '*' for every year. -#}
{% macro changed_school_years() -%}
    {%- if not school_year_builds_are_ours() -%}
    select '*' as school_year
    {%- else -%}
    select distinct
        case when mapped.file_name is null then '*' else mapped.school_year end as school_year
    from ({{ files_since_last_build() }}) as ledger
    left join {{ ref('int_ingested_files_school_years') }} as mapped
        on ledger.file_name = mapped.file_name
    where mapped.file_name is null or mapped.school_year is not null

    union all

    {{ everything_when_never_built('school_year') }}
    {%- endif -%}
{%- endmacro %}

{#- '*' (everything) while the model has no finished build in the log. -#}
{% macro everything_when_never_built(column) -%}
    select '*' as {{ column }}
    from {{ ref('int_school_year_builds') }}
    where model_name = '{{ school_year_build_name() }}'
    having max(case when is_built then ingested_through end) is null
{%- endmacro %}

{#- A filter: `expression` is in the set `set_query` selects, or the set holds '*' (every
    row). -#}
{% macro in_set_or_everything(expression, set_query) -%}
    ({{ expression }} in ({{ set_query }}) or '*' in ({{ set_query }}))
{%- endmacro %}

{#- A filter: the row's school year is rebuilt by this build (always true on a full build). -#}
{% macro in_changed_school_years(school_year) -%}
    {%- if is_incremental() -%}
        {{ in_set_or_everything("coalesce(" ~ school_year ~ ", '')", changed_school_years()) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Not under `dbt run --empty`, which reads no rows: it neither deletes a year nor
    counts as a build (school_year_build_finished). -#}
{% macro delete_changed_school_years() -%}
    {%- if is_incremental() and not flags.EMPTY -%}
        delete from {{ this }} where {{ in_changed_school_years('school_year') }}
    {%- endif -%}
{%- endmacro %}

{#-
  The school year as a number (2024 for '2024-25'; 0 when it does not start with four
  digits): int_result_cells_ranked numbers its cells within each year after it, so that
  cell ids stay unique across years that are built at different times (two years that
  are not numbers would share ids, and its unique test would fail).
-#}
{% macro school_year_number(school_year) -%}
    coalesce(try_cast(substr({{ school_year }}, 1, 4) as bigint), 0)
{%- endmacro %}

{#- The config of a model that keeps its high-water in the build log and, on an
    incremental run, replaces what changed with the incremental strategy `strategy`
    (replace_changed_sql: the delete and the append in one transaction): partitioned by
    school year, or maintained by response (response_deltas.sql). -#}
{% macro build_logged_incremental(strategy) -%}
    {{ config(
        materialized='incremental',
        incremental_strategy=strategy,
        on_schema_change='fail',
        tmp_relation_type=incremental_tmp_relation_type(),
        pre_hook="{{ school_year_build_started() }}",
        post_hook="{{ school_year_build_finished() }}"
    ) }}
{%- endmacro %}

{#- The config of a model partitioned by school year (see the top of this file). -#}
{% macro school_year_partitioned() -%}
    {{ build_logged_incremental('replace_changed_school_years') }}
{%- endmacro %}

{#- The incremental strategy of a model partitioned by school year (dbt's custom
    strategies: get_incremental_<strategy>_sql). -#}
{% macro get_incremental_replace_changed_school_years_sql(arg_dict) -%}
    {{ return(replace_changed_sql(arg_dict, delete_changed_school_years())) }}
{%- endmacro %}
