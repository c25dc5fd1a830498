{{ response_delta_maintained() }}
{#-
  One row per response for notebooks: who responded (student attributes when the
  response is linked to a student) and one score column per topic of the item bank
  (the respondent topic score; null when fewer than half of the topic's items were
  answered or the topic was not asked). A topic added to seeds/survey/topics.csv needs
  its column here: the test assert_respondents_wide_has_every_topic says so. Scores are
  cast to double, the type the contract (yml) gives them on every engine.
-#}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'question_responses') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
with

responses as (
    select * from {{ ref('fct_survey_responses') }}
    where {{ in_changed_responses('response_id') }}
),

students as (
    select
        student_key,
        grade_level,
        gender,
        race_ethnicity_federal,
        english_learner,
        iep,
        econ_disadvantaged
    from {{ ref('dim_students') }}
),

schools as (
    select
        school_id,
        school_level
    from {{ ref('dim_schools') }}
),

topic_scores as (
    select
        response_id,
        cast(max(case when topic_id = 'stu_belonging' then topic_score end) as double) as stu_belonging_score,
        cast(max(case when topic_id = 'stu_safety' then topic_score end) as double) as stu_safety_score,
        cast(max(case when topic_id = 'stu_relationships' then topic_score end) as double) as stu_relationships_score,
        cast(max(case when topic_id = 'stu_engagement' then topic_score end) as double) as stu_engagement_score,
        cast(max(case when topic_id = 'stu_expectations' then topic_score end) as double) as stu_expectations_score,
        cast(max(case when topic_id = 'stu_wellbeing' then topic_score end) as double) as stu_wellbeing_score,
        cast(max(case when topic_id = 'stf_leadership' then topic_score end) as double) as stf_leadership_score,
        cast(max(case when topic_id = 'stf_collaboration' then topic_score end) as double) as stf_collaboration_score,
        cast(max(case when topic_id = 'stf_conditions' then topic_score end) as double) as stf_conditions_score,
        cast(max(case when topic_id = 'fam_communication' then topic_score end) as double) as fam_communication_score,
        cast(max(case when topic_id = 'fam_welcome' then topic_score end) as double) as fam_welcome_score
    from {{ ref('int_response_topics_scored') }}
    where {{ in_changed_responses('response_id') }}
    group by response_id
),

final as (
    select
        responses.response_id,
        responses.survey_id,
        responses.school_year,
        responses.respondent_type,
        responses.district_id,
        responses.school_id,
        schools.school_level,
        responses.student_key,
        students.grade_level,
        students.gender,
        students.race_ethnicity_federal as race_ethnicity,
        students.english_learner,
        students.iep,
        students.econ_disadvantaged,
        responses.is_complete,
        responses.items_answered,
        topic_scores.stu_belonging_score,
        topic_scores.stu_safety_score,
        topic_scores.stu_relationships_score,
        topic_scores.stu_engagement_score,
        topic_scores.stu_expectations_score,
        topic_scores.stu_wellbeing_score,
        topic_scores.stf_leadership_score,
        topic_scores.stf_collaboration_score,
        topic_scores.stf_conditions_score,
        topic_scores.fam_communication_score,
        topic_scores.fam_welcome_score
    from responses
    left join students
        on responses.student_key = students.student_key
    left join schools
        on responses.school_id = schools.school_id
    left join topic_scores
        on responses.response_id = topic_scores.response_id
)

select * from final
