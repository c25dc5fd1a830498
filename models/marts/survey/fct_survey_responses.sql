{{ response_delta_maintained() }}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'question_responses') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
with

responses as (
    select * from {{ ref('int_survey_responses_enriched') }}
    where {{ in_changed_responses('response_id') }}
),

answer_counts as (
    select
        response_id,
        count(answer_value) as questions_answered,
        count(distinct case when is_substantive then canonical_item_id end) as items_answered
    from {{ ref('int_question_responses_scored') }}
    where {{ in_changed_responses('response_id') }}
    group by response_id
),

final as (
    select
        responses.response_id,
        responses.survey_id,
        responses.school_id,
        responses.district_id,
        {{ student_key('responses.student_id') }} as student_key,
        responses.respondent_type,
        responses.school_year,
        responses.started_at,
        responses.submitted_at,
        responses.is_complete,
        coalesce(answer_counts.questions_answered, 0) as questions_answered,
        coalesce(answer_counts.items_answered, 0) as items_answered
    from responses
    left join answer_counts
        on responses.response_id = answer_counts.response_id
)

select * from final
