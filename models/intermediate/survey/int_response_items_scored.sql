{{ response_delta_maintained() }}
{#-
  One row per response and canonical item the respondent answered substantively, with
  the response's attributes. item_score is the scored value (the mean, should one form
  ask the same item twice).
  Answers are reduced to one row per response and item first, on that narrow key, and
  the response's attributes joined after: grouping the 9 M answers of scale 10 on the
  response's eight columns took twice as long (EXPLAIN ANALYZE: 6.9 s in the hash
  aggregate).
-#}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'question_responses') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
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
        and {{ in_changed_responses('response_id') }}
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
        and {{ in_changed_responses('response_id') }}
),

items as (
    select
        response_id,
        topic_id,
        canonical_item_id,
        avg(cast(scored_value as double)) as item_score,
        count(*) as substantive_answers,
        count(case when is_favorable then 1 end) as favorable_answers
    from answers
    group by
        response_id,
        topic_id,
        canonical_item_id
),

final as (
    select
        items.response_id,
        responses.survey_id,
        responses.school_id,
        responses.district_id,
        responses.respondent_type,
        responses.school_year,
        items.topic_id,
        items.canonical_item_id,
        items.item_score,
        items.substantive_answers,
        items.favorable_answers
    from items
    inner join responses
        on items.response_id = responses.response_id
)

select * from final
