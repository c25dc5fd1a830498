{{ school_year_partitioned() }}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

surveys as (
    select
        survey_id,
        district_id,
        respondent_type,
        school_year
    from {{ ref('stg_replica__surveys') }}
    where {{ in_changed_school_years('school_year') }}
),

invitations as (
    select
        survey_id,
        school_id,
        count(*) as invited
    from {{ ref('stg_replica__survey_invitations') }}
    group by survey_id, school_id
),

responses as (
    select
        survey_id,
        school_id,
        count(*) as responded,
        count(case when is_complete then 1 end) as completed
    from {{ ref('fct_survey_responses') }}
    where {{ in_changed_school_years('school_year') }}
    group by survey_id, school_id
),

survey_schools as (
    select
        coalesce(invitations.survey_id, responses.survey_id) as survey_id,
        coalesce(invitations.school_id, responses.school_id) as school_id,
        coalesce(invitations.invited, 0) as invited,
        coalesce(responses.responded, 0) as responded,
        coalesce(responses.completed, 0) as completed
    from invitations
    full outer join responses
        on invitations.survey_id = responses.survey_id
        and invitations.school_id = responses.school_id
),

final as (
    select
        surveys.school_year,
        survey_schools.survey_id,
        survey_schools.school_id,
        surveys.district_id,
        surveys.respondent_type,
        survey_schools.invited,
        survey_schools.responded,
        survey_schools.completed,
        case
            when survey_schools.invited > 0 then cast(1.0 * survey_schools.responded / survey_schools.invited as double)
        end as response_rate,
        case
            when survey_schools.invited > 0 then cast(1.0 * survey_schools.completed / survey_schools.invited as double)
        end as completion_rate
    from survey_schools
    inner join surveys
        on survey_schools.survey_id = surveys.survey_id
)

select * from final
