{{ school_year_partitioned() }}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

results as (
    select * from {{ ref('int_topic_results_aggregated') }}
    where {{ in_changed_school_years('school_year') }}
),

suppression as (
    select * from {{ ref('int_result_cells_suppressed') }}
    where {{ in_changed_school_years('school_year') }}
        and result_kind = 'topic'
),

final as (
    select
        results.school_year,
        results.respondent_type,
        results.reporting_level,
        results.entity_id,
        results.topic_id,
        results.subgroup_category,
        results.subgroup_value,
        suppression.is_suppressed,
        {{ unless_suppressed('results.respondents') }} as respondents,
        {{ unless_suppressed('results.scored_respondents') }} as scored_respondents,
        {{ unless_suppressed('cast(results.topic_mean as double)') }} as topic_mean,
        {{ unless_suppressed('cast(100.0 * results.favorable_answers / results.substantive_answers as double)') }}
            as percent_favorable,
        {{ unless_suppressed('results.favorable_answers') }} as favorable_answers,
        {{ unless_suppressed('results.substantive_answers') }} as substantive_answers,
        suppression.suppression_reason,
        results.district_id
    from results
    inner join suppression
        on results.school_year = suppression.school_year
        and results.respondent_type = suppression.respondent_type
        and results.reporting_level = suppression.reporting_level
        and results.entity_id = suppression.entity_id
        and results.topic_id = suppression.topic_id
        and results.subgroup_category = suppression.subgroup_category
        and results.subgroup_value = suppression.subgroup_value
)

select * from final
