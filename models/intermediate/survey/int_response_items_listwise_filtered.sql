{{ response_delta_maintained() }}
{#-
  The respondents reliability is computed over: for each school year, respondent type
  and topic, the responses that answered every item of the topic (listwise), with each
  item score and the response's total score on the topic.
-#}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'question_responses') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
with

items as (
    select
        response_id,
        respondent_type,
        school_year,
        topic_id,
        canonical_item_id,
        item_score
    from {{ ref('int_response_items_scored') }}
    where {{ in_changed_responses('response_id') }}
),

topic_sizes as (
    select
        topic_id,
        count(*) as topic_items
    from {{ ref('canonical_items') }}
    group by topic_id
),

complete_responses as (
    select
        items.response_id,
        items.topic_id,
        sum(items.item_score) as total_score
    from items
    inner join topic_sizes
        on items.topic_id = topic_sizes.topic_id
    group by items.response_id, items.topic_id, topic_sizes.topic_items
    having count(*) = topic_sizes.topic_items
),

final as (
    select
        items.response_id,
        items.respondent_type,
        items.school_year,
        items.topic_id,
        items.canonical_item_id,
        items.item_score,
        complete_responses.total_score
    from items
    inner join complete_responses
        on items.response_id = complete_responses.response_id
        and items.topic_id = complete_responses.topic_id
)

select * from final
