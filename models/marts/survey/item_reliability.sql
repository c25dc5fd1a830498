{{ school_year_partitioned() }}
{#-
  Per item of a topic, over the same listwise respondents as reliability: the corrected
  item-total correlation (the item against the sum of the topic's other items) and
  Cronbach's alpha of the topic without the item.
-#}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

listwise as (
    select
        response_id,
        school_year,
        respondent_type,
        topic_id,
        canonical_item_id,
        item_score,
        total_score - item_score as rest_score
    from {{ ref('int_response_items_listwise_filtered') }}
    where {{ in_changed_school_years('school_year') }}
),

item_statistics as (
    select
        school_year,
        respondent_type,
        topic_id,
        canonical_item_id,
        count(*) as complete_respondents,
        var_samp(item_score) as item_variance,
        var_samp(rest_score) as rest_variance,
        case
            when var_samp(item_score) > 0 and var_samp(rest_score) > 0 then corr(item_score, rest_score)
        end as corrected_item_total_correlation
    from listwise
    group by
        school_year,
        respondent_type,
        topic_id,
        canonical_item_id
),

topic_statistics as (
    select
        school_year,
        respondent_type,
        topic_id,
        count(*) as items,
        sum(item_variance) as sum_item_variance
    from item_statistics
    group by
        school_year,
        respondent_type,
        topic_id
),

computed as (
    select
        item_statistics.school_year,
        item_statistics.respondent_type,
        item_statistics.topic_id,
        item_statistics.canonical_item_id,
        topic_statistics.items,
        item_statistics.complete_respondents,
        item_statistics.corrected_item_total_correlation,
        case
            when topic_statistics.items > 2 and item_statistics.rest_variance > 0
                then (topic_statistics.items - 1) / (topic_statistics.items - 2.0)
                    * (
                        1 - (topic_statistics.sum_item_variance - item_statistics.item_variance)
                        / item_statistics.rest_variance
                    )
        end as alpha_if_item_deleted
    from item_statistics
    inner join topic_statistics
        on item_statistics.school_year = topic_statistics.school_year
        and item_statistics.respondent_type = topic_statistics.respondent_type
        and item_statistics.topic_id = topic_statistics.topic_id
),

final as (
    select
        school_year,
        respondent_type,
        topic_id,
        canonical_item_id,
        items,
        {{ is_below_min_reporting_n('complete_respondents') }} as is_suppressed,
        {{ suppress_below_min_reporting_n('complete_respondents', 'complete_respondents') }} as complete_respondents,
        {{ suppress_below_min_reporting_n('cast(corrected_item_total_correlation as double)', 'complete_respondents') }}
            as corrected_item_total_correlation,
        {{ suppress_below_min_reporting_n('cast(alpha_if_item_deleted as double)', 'complete_respondents') }}
            as alpha_if_item_deleted
    from computed
)

select * from final
