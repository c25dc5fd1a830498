{#-
  Models maintained by response: the per-response tables (int_survey_responses_enriched,
  int_respondent_subgroups_assigned, int_response_items_scored,
  int_response_items_listwise_filtered, int_response_topics_scored, fct_survey_responses,
  respondents_wide), whose rows each belong to one response and depend only on that
  response's answers and attributes. A day's data changes a few thousand of the
  millions of responses (the open survey window's new responses and late corrections), so
  on an incremental run such a model replaces only the responses whose change logs hold a
  change since its last build: its query selects them again, then one transaction deletes
  their rows and appends the new ones (incremental strategy replace_changed_responses,
  replace_changed_sql), so a response that ends with no rows is emptied too, and readers
  never see a response missing. Its config:

    materialized='incremental', incremental_strategy='replace_changed_responses',
    on_schema_change='fail', tmp_relation_type=incremental_tmp_relation_type(),
    pre_hook="{{ school_year_build_started() }}",
    post_hook="{{ school_year_build_finished() }}"

  (response_delta_maintained() below) and its query filters each input with
  in_changed_responses('<response_id column>') (true on a full build). It reads
  `-- depends_on:` int_school_year_builds, the build log it shares with the models
  partitioned by school year (school_year_partitions.sql): the same high-water per model.

  Which responses changed, for this model: those with a change in a file of
  raw.question_responses or raw.survey_responses (of those it is built from:
  response_change_logs) loaded after the high-water its last
  successful build went through, up to the high-water this build started from. A file of
  any other replica table the model is built from in that window (found in dbt's graph:
  surveys for all of them and survey questions for those that score answers, which can
  touch any response's attributes or scoring; students for int_respondent_subgroups_assigned,
  and students, schools and districts for respondents_wide) rebuilds every
  response, and so does a model without a recorded high-water. A file of a table it is
  not built from (invitations) changes nothing here. Project changes (a model,
  seed or macro edited: a crosswalk, the item bank) are not data: the orchestrator builds
  them with --full-refresh (orchestrate/scope.py, dbt_args).

  Known limits, shared with the school-year partitions: a build's window ends at the
  ledger's high-water, not at what the models it reads have built through, so building
  one of these models without the models before it (`--select fct_survey_responses` after
  an ingest) rebuilds the changed responses from inputs that do not have them yet, and
  counts them as built; build with the models before it (`+fct_survey_responses`, as the
  orchestrator's scope does).
-#}

{% macro changed_responses() -%}
    {%- if not school_year_builds_are_ours() -%}
    select '*' as response_id
    {%- else -%}
    {{ responses_changed_in(files_since_last_build(), model.unique_id) }}

    union all

    {{ everything_when_never_built('response_id') }}
    {%- endif -%}
{%- endmacro %}

{#- The responses that the files of a window (a query of file_name, table_name) change for
    a model: those with a change in a file of the answers' or responses' change log that
    the model is built from (response_change_logs), and '*' (every response) when the
    window holds a file of another replica table the model is built from. -#}
{% macro responses_changed_in(files, model_unique_id) -%}
    select changes.response_id
    from (
        {%- for change_log in response_change_logs(model_unique_id) %}
        {% if not loop.first %}union all{% endif %}
        select
            response_id,
            _source_file
        from {{ source('replica', change_log) }}
        {%- endfor %}
    ) as changes
    inner join ({{ files }}) as new_files
        on changes._source_file = new_files.file_name

    union all

    select '*' as response_id
    from ({{ files }}) as new_files
    where new_files.table_name in ({{ "'" ~ (replica_tables_upstream(model_unique_id) | join("', '")) ~ "'" }})
{%- endmacro %}

{#- The replica tables a model is built from, however far upstream (dbt's graph, walked
    when the model runs): what the two macros below choose from. -#}
{% macro _replica_tables_upstream_of(model_unique_id) -%}
    {%- set found = {} -%}
    {%- do _collect_upstream(model_unique_id or model.unique_id, found) -%}
    {%- set tables = [] -%}
    {%- for unique_id in found if unique_id.startswith('source.') -%}
        {%- set source_node = graph.sources[unique_id] -%}
        {%- if source_node.source_name == 'replica' -%}
            {%- do tables.append(source_node.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(tables | sort) }}
{%- endmacro %}

{#- The change logs of answers and responses (question_responses, survey_responses) that a
    model maintained by response is built from: the tables of a response's attributes
    (int_survey_responses_enriched, int_respondent_subgroups_assigned) are not built from
    answers, so a day of answers alone rebuilds none of their responses (and does not
    select them). Both when dbt only parses. -#}
{% macro response_change_logs(model_unique_id) -%}
    {%- if not execute %}{{ return(['question_responses', 'survey_responses']) }}{% endif -%}
    {%- set change_logs = [] -%}
    {%- for name in _replica_tables_upstream_of(model_unique_id)
        if name in ('question_responses', 'survey_responses') -%}
        {%- do change_logs.append(name) -%}
    {%- endfor -%}
    {{ return(change_logs or ['survey_responses']) }}
{%- endmacro %}

{#- The replica tables, other than the answers' and responses' change logs, that this
    model is built from, however far upstream: a file of one of them rebuilds every
    response. A dependency added upstream is seen without an edit here. Never empty (a
    name no table has stands in). -#}
{% macro replica_tables_upstream(model_unique_id=none) -%}
    {%- if not execute %}{{ return(['-']) }}{% endif -%}
    {%- set tables = [] -%}
    {%- for name in _replica_tables_upstream_of(model_unique_id)
        if name not in ('question_responses', 'survey_responses', 'ingest_ledger', 'quarantined_lines') -%}
        {%- do tables.append(name) -%}
    {%- endfor -%}
    {{ return(tables or ['-']) }}
{%- endmacro %}

{% macro _collect_upstream(unique_id, found) -%}
    {%- if unique_id not in found -%}
        {%- do found.update({unique_id: true}) -%}
        {%- set node = graph.nodes.get(unique_id) -%}
        {%- if node is not none -%}
            {%- for parent in node.depends_on.nodes -%}
                {%- do _collect_upstream(parent, found) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- A filter: the row's response is rebuilt by this build (always true on a full build). -#}
{% macro in_changed_responses(response_id) -%}
    {%- if is_incremental() -%}
        {{ in_set_or_everything(response_id, changed_responses()) }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Not under `dbt run --empty`, which reads no rows. -#}
{% macro delete_changed_responses() -%}
    {%- if is_incremental() and not flags.EMPTY -%}
        delete from {{ this }} where {{ in_changed_responses('response_id') }}
    {%- endif -%}
{%- endmacro %}

{#- The config of a model maintained by response (see the top of this file). -#}
{% macro response_delta_maintained() -%}
    {{ build_logged_incremental('replace_changed_responses') }}
{%- endmacro %}

{#- The incremental strategy of a model maintained by response (dbt's custom strategies:
    get_incremental_<strategy>_sql). -#}
{% macro get_incremental_replace_changed_responses_sql(arg_dict) -%}
    {{ return(replace_changed_sql(arg_dict, delete_changed_responses())) }}
{%- endmacro %}

{#-
  The uniqueness tests of a model maintained by response check the responses rebuilt
  since they last passed, not the millions kept: their keys hold response_id, so a key
  can only repeat among one response's rows, and a kept response's rows, which passed the
  test before, have not changed since. (Its not_null tests, a cheap scan, read every row;
  a mart's are not_null constraints of its contract, checked as the rows are written.)
  Such a test is configured `where: "__rebuilt_responses__"`; dbt's get_where_subquery,
  overridden below as dbt's docs describe for a `where` a macro computes, replaces the
  placeholder with a filter on rebuilt_responses(). fct_question_responses's uniqueness
  test, `where: "__rescored_responses__"`, reads the responses with an answer its
  scoring model rescored (rescored_responses_filter). Every row is read when the model was
  not built by this invocation (a plain `dbt test`), was built from scratch (a full
  refresh, or no table yet: school_year_build_started), has no earlier build, or has no
  build log in this target, or when the build's window holds a file of another table the
  model is built from.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') or '' -%}
    {%- if '__rebuilt_responses__' in where -%}
        {%- set where = where | replace('__rebuilt_responses__', rebuilt_responses_filter(relation)) -%}
    {%- endif -%}
    {%- if '__rescored_responses__' in where -%}
        {%- set where = where | replace('__rescored_responses__', rescored_responses_filter(relation)) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}

{#- The build log as this target builds it, found in dbt's graph (a test cannot ref() what
    it does not declare); none when it is not there, or not beside the tested relation. -#}
{% macro tested_build_log(relation) -%}
    {%- set log_node = graph.nodes.get('model.' ~ project_name ~ '.int_school_year_builds') -%}
    {%- set log = adapter.get_relation(database=log_node.database, schema=log_node.schema,
                                       identifier=log_node.alias) if log_node else none -%}
    {%- if log is none or (log.database | lower) != (relation.database | lower) -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(log) }}
{%- endmacro %}

{#- A filter on the responses the build of the tested model rebuilt ('true': every row). -#}
{% macro rebuilt_responses_filter(relation) -%}
    {%- set log = tested_build_log(relation) if execute and not flags.FULL_REFRESH else none -%}
    {%- if log is none %}{{ return('true') }}{% endif -%}
    {{ return(in_set_or_everything('response_id', rebuilt_responses(relation, model.attached_node, log))) }}
{%- endmacro %}

{#- The name under which record_tested_builds logs the high-water through which a model's
    filtered tests last passed. -#}
{% macro tested_build_name(relation) -%}
    {{ return(school_year_build_name(relation) ~ '#tested') }}
{%- endmacro %}

{#- The responses of the files loaded after the high-water through which the model's tests
    last passed, up to this invocation's build of it (its relation and unique_id; its
    build log: builds): '*' for every one (see above). A build whose tests failed, or did
    not run, leaves its responses to the next build's tests. -#}
{% macro rebuilt_responses(relation, model_unique_id, builds) -%}
    {%- set build_name = school_year_build_name(relation) -%}
    {%- set tested_name = tested_build_name(relation) -%}
    {%- set files = ledger_files_between(
        builds, [build_name, tested_name],
        tested_before_here(tested_name), built_here(build_name)) -%}
    {{ responses_changed_in(files, model_unique_id) }}

    union all

    {{ everything_unless_built_incrementally_here(builds, build_name, tested_name) }}
{%- endmacro %}

{#- The same filter for the tests of fct_question_responses, a view of
    int_question_responses_scored: that model rescores the answers whose inputs changed
    (its own window: files, responses, question mappings) and stamps them with at least
    its build's high-water (ingested_through), which its build log records. The responses
    with an answer stamped after the high-water through which these tests last passed are
    those rescored since. -#}
{% macro rescored_responses_filter(relation) -%}
    {%- set log = tested_build_log(relation) if execute and not flags.FULL_REFRESH else none -%}
    {%- if log is none %}{{ return('true') }}{% endif -%}
    {%- set build_name = rescoring_build_name() -%}
    {%- set tested_name = tested_build_name(relation) -%}
    {%- set rescored -%}
    select answers.response_id
    from {{ relation }} as answers
    inner join (
        select max(ingested_through) as tested_through
        from {{ log }}
        where {{ tested_before_here(tested_name) }}
    ) as tested
        on answers.ingested_through > tested.tested_through

    union all

    {{ everything_unless_built_incrementally_here(log, build_name, tested_name) }}
    {%- endset -%}
    {{ return(in_set_or_everything('response_id', rescored)) }}
{%- endmacro %}

{#- The name int_question_responses_scored, which rescores fct_question_responses's
    answers, logs its builds under. -#}
{% macro rescoring_build_name() -%}
    {%- set scored = graph.nodes['model.' ~ project_name ~ '.int_question_responses_scored'] -%}
    {{ return(scored.schema ~ '.' ~ scored.alias) }}
{%- endmacro %}

{#- '*' (every row) unless this invocation built the model (build_name) incrementally and
    its tests passed before (tested_name): not built here (a plain `dbt test`), built
    from scratch (the marker row of school_year_build_started), or never tested. -#}
{% macro everything_unless_built_incrementally_here(builds, build_name, tested_name) -%}
    select '*' as response_id
    from {{ builds }}
    where model_name in ('{{ build_name }}', '{{ tested_name }}')
    having
        count(case when {{ tested_before_here(tested_name) }} then 1 end) = 0
        or count(case when {{ built_here(build_name) }} then 1 end) = 0
        or count(case when {{ built_here(build_name) }} and ingested_through is null then 1 end) > 0
{%- endmacro %}

{#- Build-log rows: this invocation's finished build of a model (its log name), and the
    rows through which a model's filtered tests passed in earlier invocations. -#}
{% macro built_here(build_name) -%}
    model_name = '{{ build_name }}' and is_built and invocation_id = '{{ invocation_id }}'
{%- endmacro %}

{% macro tested_before_here(tested_name) -%}
    model_name = '{{ tested_name }}' and invocation_id <> '{{ invocation_id }}'
{%- endmacro %}

{#-
  on-run-end: for each model whose filtered tests (__rebuilt_responses__,
  __rescored_responses__) all passed in this invocation, log the high-water of its build
  here (for fct_question_responses, its scoring model's) under tested_build_name: the
  next build's tests start after it. A model not built here, or whose tests failed, was
  skipped or errored, logs nothing.
-#}
{% macro record_tested_builds(results) -%}
    {%- if not execute or flags.EMPTY %}{{ return('') }}{% endif -%}
    {%- set passed = {} -%}
    {%- for result in results if result.node.resource_type == 'test' -%}
        {%- set where = result.node.config.get('where') or '' -%}
        {%- if '__rebuilt_responses__' in where or '__rescored_responses__' in where -%}
            {%- set key = result.node.attached_node -%}
            {%- set scored = '__rescored_responses__' in where -%}
            {%- do passed.update({key: [passed.get(key, [true])[0] and result.status == 'pass', scored]}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for key, outcome in passed.items() if outcome[0] and key in graph.nodes -%}
        {%- set tested_node = graph.nodes[key] -%}
        {%- set relation = api.Relation.create(database=tested_node.database, schema=tested_node.schema,
                                               identifier=tested_node.alias) -%}
        {%- set log = tested_build_log(relation) -%}
        {%- if log is not none -%}
            {%- set built_name = rescoring_build_name() if outcome[1] else school_year_build_name(relation) -%}
            {%- set insert -%}
            insert into {{ log }} (model_name, invocation_id, ingested_through, is_built)
            select
                '{{ tested_build_name(relation) }}',
                invocation_id,
                max(ingested_through),
                true
            from {{ log }}
            where {{ built_here(built_name) }}
                and ingested_through is not null
            group by invocation_id
            {%- endset -%}
            {%- do run_query(insert) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return('') }}
{%- endmacro %}
