{{ school_year_partitioned() }}
{#-
  Topic results before any suppression: one row per school year, respondent type,
  reporting level, entity, topic and subgroup, with every number the mart publishes.
  Not for readers: topic_results publishes these numbers only where
  int_result_cells_suppressed allows.
-#}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

respondent_topics as (
    select * from {{ ref('int_response_topics_scored') }}
    where {{ in_changed_school_years('school_year') }}
),

subgroups as (
    select * from {{ ref('int_respondent_subgroups_assigned') }}
),

{{ results_by_reporting_level('respondent_topics', 'subgroups', ['topic_id'], 'topic_score') }}

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
        cast(respondents as bigint) as respondents,
        cast(scored_respondents as bigint) as scored_respondents,
        score_sum / nullif(scored_respondents, 0) as topic_mean,
        cast(favorable_answers as bigint) as favorable_answers,
        cast(substantive_answers as bigint) as substantive_answers
    from aggregated
)

select * from final
