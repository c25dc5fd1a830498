{{ response_delta_maintained() }}
{#-
  Every current response with the attributes of its survey (district, respondent type,
  school year): what the per-response models and fct_survey_responses group and filter by.
-#}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
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
    where {{ in_changed_responses('response_id') }}
),

surveys as (
    select
        survey_id,
        district_id,
        respondent_type,
        school_year
    from {{ ref('stg_replica__surveys') }}
),

final as (
    select
        responses.response_id,
        responses.survey_id,
        responses.school_id,
        surveys.district_id,
        responses.student_id,
        surveys.respondent_type,
        surveys.school_year,
        responses.started_at,
        responses.submitted_at,
        responses.is_complete
    from responses
    left join surveys
        on responses.survey_id = surveys.survey_id
)

select * from final
