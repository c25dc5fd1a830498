{{ response_delta_maintained() }}
{#-
  One row per response and topic the respondent answered at least one item of
  substantively. topic_score is the mean of the respondent's item scores on the topic
  when at least half of the topic's items (all of its items in the item bank) were
  answered, else null.
-#}
-- Maintained by response (macros/survey/response_deltas.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ source('replica', 'ingest_ledger') }}
-- depends_on: {{ source('replica', 'question_responses') }}
-- depends_on: {{ source('replica', 'survey_responses') }}
with

items as (
    select * from {{ ref('int_response_items_scored') }}
    where {{ in_changed_responses('response_id') }}
),

topic_sizes as (
    select
        topic_id,
        count(*) as topic_items
    from {{ ref('canonical_items') }}
    group by topic_id
),

answered as (
    select
        response_id,
        survey_id,
        school_id,
        district_id,
        respondent_type,
        school_year,
        topic_id,
        cast(sum(substantive_answers) as bigint) as substantive_answers,
        cast(sum(favorable_answers) as bigint) as favorable_answers,
        count(*) as items_answered,
        avg(item_score) as mean_item_score
    from items
    group by
        response_id,
        survey_id,
        school_id,
        district_id,
        respondent_type,
        school_year,
        topic_id
),

final as (
    select
        answered.response_id,
        answered.survey_id,
        answered.school_id,
        answered.district_id,
        answered.respondent_type,
        answered.school_year,
        answered.topic_id,
        topic_sizes.topic_items,
        answered.items_answered,
        answered.substantive_answers,
        answered.favorable_answers,
        case
            when 2 * answered.items_answered >= topic_sizes.topic_items then answered.mean_item_score
        end as topic_score
    from answered
    inner join topic_sizes
        on answered.topic_id = topic_sizes.topic_id
)

select * from final
