{{
    config(
        materialized='incremental',
        unique_key=['response_id', 'question_id'],
        incremental_strategy='delete_insert_without_tombstones',
        on_schema_change='fail',
        tmp_relation_type=incremental_tmp_relation_type(),
        pre_hook="{{ school_year_build_started() }}",
        post_hook="{{ school_year_build_finished() }}"
    )
}}
{#-
  The scoring rules: every current answer of an existing response to an existing
  question, resolved to the option it names and scored on the canonical scale.

  An answer is an option's value ("4") or, on some clients' forms, its label ("Agree",
  matched case- and whitespace-insensitively against the question's options); anything
  else (open text, unknown labels) resolves to no option. It is substantive when the
  question is mapped, the option's value lies on the canonical scale (1..scale_points)
  and the option's label is not in non_substantive_options.

  Incremental: each run rescores only the answers whose inputs changed since the last
  run, and replaces them by key (delete+insert). An answer changed when
    - a file loaded into raw.question_responses since the last run holds a change to it
      (c, u or d), or
    - a file loaded into raw.survey_responses since the last run holds a change to its
      response (submitted, withdrawn, arrived after its answers), or
    - its question's mapping fingerprint differs from the one it was scored with (a
      crosswalk or item bank edit, a question or option change, a question deleted or
      arriving after its answers).
  Only those keys are read from the change log (current_answers, the staging view's
  SQL), so a run costs what changed, not the whole log. "Since the last run" is by the
  ingest ledger's load time, not by _seq: a file that arrives late carries older _seq
  values than rows already built. A changed key that no longer has a current answer comes
  out as a tombstone (is_deleted): delete+insert removes the old row, and the same
  transaction removes the tombstone (incremental strategy
  delete_insert_without_tombstones, macros/replace_changed_sql.sql).
-#}
-- Its builds are logged (int_school_year_builds), for its tests only: the uniqueness test
-- of fct_question_responses reads the responses a build rescored (response_deltas.sql).
-- depends_on: {{ ref('int_school_year_builds') }}
-- The incremental branch reads the change logs directly:
-- depends_on: {{ source('replica', 'question_responses') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
with

ledger as (
    select
        file_name,
        table_name,
        loaded_at
    from {{ source('replica', 'ingest_ledger') }}
),

ingest_high_water as (
    select max(loaded_at) as ingested_through
    from ledger
),

questions as (
    select
        question_id,
        survey_id,
        canonical_item_id,
        topic_id,
        mapping_method,
        is_open_ended,
        scale_points,
        reverse_coded,
        favorable_threshold,
        mapping_fingerprint
    from {{ ref('int_questions_mapped') }}
),

{% if is_incremental() %}

previous_run as (
    select coalesce(max(ingested_through), cast('1900-01-01' as timestamp)) as ingested_through
    from {{ this }}
),

files_since_previous_run as (
    select
        ledger.file_name,
        ledger.table_name
    from ledger
    cross join previous_run
    where ledger.loaded_at > previous_run.ingested_through
),

answer_changes as (
    select
        response_id,
        question_id,
        _source_file as source_file
    from {{ source('replica', 'question_responses') }}
),

changed_answers as (
    select
        answer_changes.response_id,
        answer_changes.question_id
    from answer_changes
    inner join files_since_previous_run
        on answer_changes.source_file = files_since_previous_run.file_name
    where files_since_previous_run.table_name = 'question_responses'
),

changed_responses as (
    select distinct response_changes.response_id
    from {{ source('replica', 'survey_responses') }} as response_changes
    inner join files_since_previous_run
        on response_changes._source_file = files_since_previous_run.file_name
    where files_since_previous_run.table_name = 'survey_responses'
),

built_questions as (
    select distinct
        question_id,
        mapping_fingerprint
    from {{ this }}
),

changed_questions as (
    select coalesce(questions.question_id, built_questions.question_id) as question_id
    from questions
    full outer join built_questions
        on questions.question_id = built_questions.question_id
    where questions.mapping_fingerprint is null
        or built_questions.mapping_fingerprint is null
        or questions.mapping_fingerprint <> built_questions.mapping_fingerprint
),

built_rows as (
    select
        response_id,
        question_id
    from {{ this }}
),

keys_to_rebuild as (
    select
        response_id,
        question_id
    from changed_answers

    union

    select
        answer_changes.response_id,
        answer_changes.question_id
    from answer_changes
    where answer_changes.response_id in (select changed_responses.response_id from changed_responses)
        or answer_changes.question_id in (select changed_questions.question_id from changed_questions)

    union

    select
        built_rows.response_id,
        built_rows.question_id
    from built_rows
    where built_rows.response_id in (select changed_responses.response_id from changed_responses)
        or built_rows.question_id in (select changed_questions.question_id from changed_questions)
),

-- Only the rebuilt keys' changes are read and reduced to current state.
changes_to_rebuild as (
    select answer_log.*
    from {{ source('replica', 'question_responses') }} as answer_log
    inner join keys_to_rebuild
        on answer_log.response_id = keys_to_rebuild.response_id
        and answer_log.question_id = keys_to_rebuild.question_id
),

answers as (
    {{ current_answers('changes_to_rebuild') }}
),

{% else %}

answers as (
    select * from {{ ref('stg_replica__question_responses') }}
),

{% endif %}

responses as (
    select response_id
    from {{ ref('stg_replica__survey_responses') }}
),

options as (
    select
        question_id,
        option_value,
        option_label,
        option_label_key,
        option_position,
        non_substantive_reason
    from {{ ref('int_question_options_parsed') }}
),

-- A value or label shown twice on one form resolves to the first option showing it.
options_by_value as (
    select *
    from options
    qualify row_number() over (partition by question_id, option_value order by option_position) = 1
),

options_by_label as (
    select *
    from options
    qualify row_number() over (partition by question_id, option_label_key order by option_position) = 1
),

non_substantive_labels as (
    select {{ normalize_option_label('option_label') }} as label_key
    from {{ ref('non_substantive_options') }}
),

answers_in_scope as (
    select
        answers.response_id,
        answers.question_id,
        answers.answer_value,
        answers.change_seq,
        try_cast(answers.answer_value as integer) as answer_as_integer,
        {{ normalize_option_label('answers.answer_value') }} as answer_label_key
    from answers
    inner join responses
        on answers.response_id = responses.response_id
    inner join questions
        on answers.question_id = questions.question_id
),

resolved as (
    select
        answers_in_scope.response_id,
        answers_in_scope.question_id,
        answers_in_scope.answer_value,
        answers_in_scope.change_seq,
        answers_in_scope.answer_label_key,
        coalesce(by_value.option_value, by_label.option_value) as option_value,
        case
            when by_value.option_value is not null then 'value'
            when by_label.option_value is not null then 'label'
        end as answered_by
    from answers_in_scope
    left join options_by_value as by_value
        on answers_in_scope.question_id = by_value.question_id
        and answers_in_scope.answer_as_integer = by_value.option_value
    left join options_by_label as by_label
        on answers_in_scope.question_id = by_label.question_id
        and answers_in_scope.answer_label_key = by_label.option_label_key
),

classified as (
    select
        resolved.response_id,
        resolved.question_id,
        questions.survey_id,
        questions.canonical_item_id,
        questions.topic_id,
        questions.mapping_method,
        resolved.answer_value,
        resolved.option_value,
        options.option_label,
        resolved.answered_by,
        questions.scale_points,
        questions.reverse_coded,
        questions.favorable_threshold,
        questions.mapping_fingerprint,
        resolved.change_seq,
        case
            when resolved.answer_value is null then 'skipped'
            when questions.is_open_ended then 'open_text'
            when questions.canonical_item_id is null then 'unmapped_question'
            when options.non_substantive_reason is not null then options.non_substantive_reason
            when
                resolved.option_value is null and non_substantive_labels.label_key is not null
                then 'non_substantive_label'
            when resolved.option_value is null then 'not_an_option'
            when resolved.option_value < 1 or resolved.option_value > questions.scale_points then 'off_scale'
        end as non_substantive_reason
    from resolved
    inner join questions
        on resolved.question_id = questions.question_id
    left join options_by_value as options
        on resolved.question_id = options.question_id
        and resolved.option_value = options.option_value
    left join non_substantive_labels
        on resolved.answer_label_key = non_substantive_labels.label_key
),

scored as (
    select
        response_id,
        question_id,
        survey_id,
        canonical_item_id,
        topic_id,
        mapping_method,
        answer_value,
        option_value,
        option_label,
        answered_by,
        non_substantive_reason,
        favorable_threshold,
        mapping_fingerprint,
        change_seq,
        non_substantive_reason is null as is_substantive,
        case
            when non_substantive_reason is not null then null
            when reverse_coded then 1 + scale_points - option_value
            else option_value
        end as scored_value
    from classified
),

-- Every rebuilt key: its scored answer, or a tombstone when it has none any more. A full
-- build has no tombstones to write (nothing to replace): it takes the scored answers as
-- they are, without joining 10 M keys back to them (EXPLAIN ANALYZE at scale 10: 5.4 s).
{% if is_incremental() %}
rebuilt as (
    select
        keys_to_rebuild.response_id as rebuilt_response_id,
        keys_to_rebuild.question_id as rebuilt_question_id,
        scored.*
    from keys_to_rebuild
    left join scored
        on keys_to_rebuild.response_id = scored.response_id
        and keys_to_rebuild.question_id = scored.question_id
),
{% else %}
rebuilt as (
    select
        response_id as rebuilt_response_id,
        question_id as rebuilt_question_id,
        *
    from scored
),
{% endif %}

final as (
    select
        rebuilt.rebuilt_response_id as response_id,
        rebuilt.rebuilt_question_id as question_id,
        rebuilt.survey_id,
        rebuilt.canonical_item_id,
        rebuilt.topic_id,
        rebuilt.mapping_method,
        rebuilt.answer_value,
        rebuilt.option_value,
        rebuilt.option_label,
        rebuilt.answered_by,
        rebuilt.is_substantive,
        rebuilt.non_substantive_reason,
        rebuilt.scored_value,
        case when rebuilt.is_substantive then rebuilt.scored_value >= rebuilt.favorable_threshold end as is_favorable,
        rebuilt.change_seq as answer_change_seq,
        rebuilt.mapping_fingerprint,
        ingest_high_water.ingested_through,
        rebuilt.response_id is null as is_deleted
    from rebuilt
    cross join ingest_high_water
)

select * from final
