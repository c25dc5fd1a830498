{{ school_year_partitioned() }}
{#-
  Cronbach's alpha per school year, respondent type and topic, pooled over every
  district: k / (k - 1) * (1 - sum of item variances / variance of the total score),
  sample variances, over the respondents who answered every item of the topic.
-#}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

listwise as (
    select * from {{ ref('int_response_items_listwise_filtered') }}
    where {{ in_changed_school_years('school_year') }}
),

item_variances as (
    select
        school_year,
        respondent_type,
        topic_id,
        canonical_item_id,
        var_samp(item_score) as item_variance
    from listwise
    group by
        school_year,
        respondent_type,
        topic_id,
        canonical_item_id
),

item_summary as (
    select
        school_year,
        respondent_type,
        topic_id,
        count(*) as items,
        sum(item_variance) as sum_item_variance
    from item_variances
    group by
        school_year,
        respondent_type,
        topic_id
),

respondent_totals as (
    select distinct
        response_id,
        school_year,
        respondent_type,
        topic_id,
        total_score
    from listwise
),

total_summary as (
    select
        school_year,
        respondent_type,
        topic_id,
        count(*) as complete_respondents,
        var_samp(total_score) as total_variance
    from respondent_totals
    group by
        school_year,
        respondent_type,
        topic_id
),

computed as (
    select
        item_summary.school_year,
        item_summary.respondent_type,
        item_summary.topic_id,
        item_summary.items,
        total_summary.complete_respondents,
        case
            when item_summary.items > 1 and total_summary.total_variance > 0
                then item_summary.items / (item_summary.items - 1.0)
                    * (1 - item_summary.sum_item_variance / total_summary.total_variance)
        end as cronbach_alpha
    from item_summary
    inner join total_summary
        on item_summary.school_year = total_summary.school_year
        and item_summary.respondent_type = total_summary.respondent_type
        and item_summary.topic_id = total_summary.topic_id
),

final as (
    select
        school_year,
        respondent_type,
        topic_id,
        items,
        {{ is_below_min_reporting_n('complete_respondents') }} as is_suppressed,
        {{ suppress_below_min_reporting_n('complete_respondents', 'complete_respondents') }} as complete_respondents,
        {{ suppress_below_min_reporting_n('cast(cronbach_alpha as double)', 'complete_respondents') }} as cronbach_alpha
    from computed
)

select * from final
