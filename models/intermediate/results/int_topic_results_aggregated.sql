{#-
  Topic results before any suppression: one row per school year, respondent type,
  reporting level, entity, topic and subgroup, with every number the mart publishes.
  Not for readers: topic_results publishes these numbers only where
  int_result_cells_suppressed allows.
-#}
with

respondent_topics as (
    select * from {{ ref('int_response_topics_scored') }}
),

subgroups as (
    select * from {{ ref('int_respondent_subgroups_assigned') }}
),

reporting_levels as (
    select 'school' as reporting_level
    union all
    select 'district' as reporting_level
),

grouped as (
    select
        respondent_topics.school_year,
        respondent_topics.respondent_type,
        reporting_levels.reporting_level,
        respondent_topics.district_id,
        respondent_topics.topic_id,
        subgroups.subgroup_category,
        subgroups.subgroup_value,
        respondent_topics.topic_score,
        respondent_topics.substantive_answers,
        respondent_topics.favorable_answers,
        case
            when reporting_levels.reporting_level = 'school' then respondent_topics.school_id
            else respondent_topics.district_id
        end as entity_id
    from respondent_topics
    inner join subgroups
        on respondent_topics.response_id = subgroups.response_id
    cross join reporting_levels
),

final as (
    select
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        district_id,
        topic_id,
        subgroup_category,
        subgroup_value,
        count(*) as respondents,
        count(topic_score) as scored_respondents,
        avg(topic_score) as topic_mean,
        cast(sum(favorable_answers) as bigint) as favorable_answers,
        cast(sum(substantive_answers) as bigint) as substantive_answers
    from grouped
    where entity_id is not null
    group by
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        district_id,
        topic_id,
        subgroup_category,
        subgroup_value
)

select * from final
