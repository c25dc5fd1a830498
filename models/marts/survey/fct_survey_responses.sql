{{ school_year_partitioned() }}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

responses as (
    select * from {{ ref('int_survey_responses_enriched') }}
    where {{ in_changed_school_years('school_year') }}
),

answer_counts as (
    select
        answers.response_id,
        count(answers.answer_value) as questions_answered,
        count(distinct case when answers.is_substantive then answers.canonical_item_id end) as items_answered
    from {{ ref('int_question_responses_scored') }} as answers
    {% if is_incremental() -%}
        inner join responses
            on answers.response_id = responses.response_id
    {%- endif %}
    group by answers.response_id
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
