{#-
  One row per response and canonical item the respondent answered substantively, with
  the response's attributes. item_score is the scored value (the mean, should one form
  ask the same item twice).
-#}
with

answers as (
    select
        response_id,
        canonical_item_id,
        topic_id,
        scored_value,
        is_favorable
    from {{ ref('int_question_responses_scored') }}
    where is_substantive
),

responses as (
    select
        response_id,
        survey_id,
        school_id,
        district_id,
        respondent_type,
        school_year
    from {{ ref('int_survey_responses_enriched') }}
    where school_year is not null
),

final as (
    select
        answers.response_id,
        responses.survey_id,
        responses.school_id,
        responses.district_id,
        responses.respondent_type,
        responses.school_year,
        answers.topic_id,
        answers.canonical_item_id,
        avg(cast(answers.scored_value as double)) as item_score,
        count(*) as substantive_answers,
        count(case when answers.is_favorable then 1 end) as favorable_answers
    from answers
    inner join responses
        on answers.response_id = responses.response_id
    group by
        answers.response_id,
        responses.survey_id,
        responses.school_id,
        responses.district_id,
        responses.respondent_type,
        responses.school_year,
        answers.topic_id,
        answers.canonical_item_id
)

select * from final
