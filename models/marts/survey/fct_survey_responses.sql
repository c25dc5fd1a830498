with

responses as (
    select
        response_id,
        survey_id,
        school_id,
        student_id,
        started_at,
        submitted_at,
        is_complete
    from {{ ref('stg_replica__survey_responses') }}
),

surveys as (
    select
        survey_id,
        district_id,
        respondent_type,
        school_year
    from {{ ref('stg_replica__surveys') }}
),

answer_counts as (
    select
        response_id,
        count(answer_value) as questions_answered,
        count(distinct case when is_substantive then canonical_item_id end) as items_answered
    from {{ ref('fct_question_responses') }}
    group by response_id
),

final as (
    select
        responses.response_id,
        responses.survey_id,
        responses.school_id,
        surveys.district_id,
        {{ student_key('responses.student_id') }} as student_key,
        surveys.respondent_type,
        surveys.school_year,
        responses.started_at,
        responses.submitted_at,
        responses.is_complete,
        coalesce(answer_counts.questions_answered, 0) as questions_answered,
        coalesce(answer_counts.items_answered, 0) as items_answered
    from responses
    left join surveys
        on responses.survey_id = surveys.survey_id
    left join answer_counts
        on responses.response_id = answer_counts.response_id
)

select * from final
