{#-
  Answers in current state, staged (trimmed, empty as null): `answer_changes` is a
  relation or CTE with raw.question_responses's columns. stg_replica__question_responses
  applies it to the whole change log; int_question_responses_scored's incremental branch to the
  changes of just the answers it rebuilds.
-#}
{% macro current_answers(answer_changes) -%}
    with

    latest as (
        {{ current_state(answer_changes, ['response_id', 'question_id']) }}
    ),

    renamed as (
        select
            response_id,
            question_id,
            nullif(trim(value), '') as answer_value,
            _seq as change_seq,
            _ts as changed_at
        from latest
    )

    select * from renamed
{%- endmacro %}
