with

results as (
    select
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        topic_id,
        is_suppressed,
        respondents,
        topic_mean,
        percent_favorable,
        suppression_reason,
        district_id,
        cast(cast(substr(school_year, 1, 4) as integer) - 1 as varchar)
        || '-' || substr(school_year, 3, 2) as previous_school_year
    from {{ ref('topic_results') }}
    where subgroup_category = 'all'
),

final as (
    select
        this_year.school_year,
        this_year.respondent_type,
        this_year.reporting_level,
        this_year.entity_id,
        this_year.topic_id,
        this_year.is_suppressed,
        this_year.respondents,
        this_year.topic_mean,
        this_year.percent_favorable,
        this_year.previous_school_year,
        last_year.respondents as previous_respondents,
        last_year.topic_mean as previous_topic_mean,
        last_year.percent_favorable as previous_percent_favorable,
        coalesce(last_year.is_suppressed, true) as previous_is_suppressed,
        this_year.percent_favorable - last_year.percent_favorable as percent_favorable_change,
        this_year.topic_mean - last_year.topic_mean as topic_mean_change,
        this_year.suppression_reason,
        last_year.suppression_reason as previous_suppression_reason,
        this_year.district_id
    from results as this_year
    left join results as last_year
        on this_year.previous_school_year = last_year.school_year
        and this_year.respondent_type = last_year.respondent_type
        and this_year.reporting_level = last_year.reporting_level
        and this_year.entity_id = last_year.entity_id
        and this_year.topic_id = last_year.topic_id
)

select * from final
