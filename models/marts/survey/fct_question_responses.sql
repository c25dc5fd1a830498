{{ config(materialized='view') }}
{#-
  Every answer of a current response, as int_question_responses_scored scores it: a view,
  so the largest table is stored once and the mart is current as soon as the
  incremental scoring model is.
-#}
with

scored_answers as (
    select * from {{ ref('int_question_responses_scored') }}
),

final as (
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
        is_substantive,
        non_substantive_reason,
        scored_value,
        is_favorable,
        answer_change_seq,
        mapping_fingerprint,
        ingested_through,
        is_deleted
    from scored_answers
)

select * from final
