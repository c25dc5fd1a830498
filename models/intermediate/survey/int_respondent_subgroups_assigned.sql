{{ response_delta_maintained() }}
{#-
  The subgroups each response counts in, as a long table: every response is in
  (all, all); a response linked to a student is also in one value of each student
  subgroup category, from the student's current roster row (Unknown when the roster
  has no value, or no row). Anonymous, staff and family responses are only in `all`.
  subgroup_profile, the same on every row of a response, names its whole set of
  subgroups, so that the results are aggregated once per profile and then spread over
  its subgroups (macros/survey/results_by_reporting_level.sql). It is a hash: a number
  whose type and value differ between DuckDB and Snowflake, compared only within one
  warehouse; assert_subgroup_profiles_name_one_set_of_subgroups fails the build if two
  sets ever share one.
-#}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
with

responses as (
    select
        response_id,
        student_id
    from {{ ref('int_survey_responses_enriched') }}
    where {{ in_changed_responses('response_id') }}
),

demographics as (
    select
        student_id,
        grade_level,
        gender,
        english_learner,
        iep,
        econ_disadvantaged
    from {{ ref('int_students_demographics_normalized') }}
),

race_ethnicity as (
    select
        student_id,
        race_ethnicity_federal
    from {{ ref('int_students_race_ethnicity_rolled_up') }}
),

students as (
    select
        demographics.student_id,
        demographics.grade_level,
        demographics.gender,
        race_ethnicity.race_ethnicity_federal,
        demographics.english_learner,
        demographics.iep,
        demographics.econ_disadvantaged
    from demographics
    left join race_ethnicity
        on demographics.student_id = race_ethnicity.student_id
),

identified as (
    select
        responses.response_id,
        coalesce(students.gender, 'Unknown') as gender,
        coalesce(students.race_ethnicity_federal, 'Unknown') as race_ethnicity,
        coalesce(students.grade_level, 'Unknown') as grade_level,
        case
            when students.english_learner then 'true'
            when not students.english_learner then 'false'
            else 'Unknown'
        end as english_learner,
        case
            when students.iep then 'true'
            when not students.iep then 'false'
            else 'Unknown'
        end as iep,
        case
            when students.econ_disadvantaged then 'true'
            when not students.econ_disadvantaged then 'false'
            else 'Unknown'
        end as econ_disadvantaged
    from responses
    left join students
        on responses.student_id = students.student_id
    where responses.student_id is not null
),

profiled as (
    select
        response_id,
        gender,
        race_ethnicity,
        grade_level,
        english_learner,
        iep,
        econ_disadvantaged,
        hash(
            'student', gender, race_ethnicity, grade_level, english_learner, iep, econ_disadvantaged
        ) as subgroup_profile
    from identified
),

everyone as (
    select
        responses.response_id,
        coalesce(profiled.subgroup_profile, hash('all')) as subgroup_profile
    from responses
    left join profiled
        on responses.response_id = profiled.response_id
),

final as (
    select
        response_id,
        'all' as subgroup_category,
        'all' as subgroup_value,
        subgroup_profile
    from everyone
    union all
    select
        response_id,
        'gender' as subgroup_category,
        gender as subgroup_value,
        subgroup_profile
    from profiled
    union all
    select
        response_id,
        'race_ethnicity' as subgroup_category,
        race_ethnicity as subgroup_value,
        subgroup_profile
    from profiled
    union all
    select
        response_id,
        'grade_level' as subgroup_category,
        grade_level as subgroup_value,
        subgroup_profile
    from profiled
    union all
    select
        response_id,
        'english_learner' as subgroup_category,
        english_learner as subgroup_value,
        subgroup_profile
    from profiled
    union all
    select
        response_id,
        'iep' as subgroup_category,
        iep as subgroup_value,
        subgroup_profile
    from profiled
    union all
    select
        response_id,
        'econ_disadvantaged' as subgroup_category,
        econ_disadvantaged as subgroup_value,
        subgroup_profile
    from profiled
)

select * from final
