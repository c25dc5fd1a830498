{#-
  Item results before any suppression: one row per school year, respondent type,
  reporting level, entity, canonical item and subgroup, with every number the mart
  publishes. Not for readers: item_results publishes these numbers only where
  int_result_cells_suppressed allows.
-#}
with

respondent_items as (
    select * from {{ ref('int_response_items_scored') }}
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
        respondent_items.school_year,
        respondent_items.respondent_type,
        reporting_levels.reporting_level,
        respondent_items.district_id,
        respondent_items.topic_id,
        respondent_items.canonical_item_id,
        subgroups.subgroup_category,
        subgroups.subgroup_value,
        respondent_items.item_score,
        respondent_items.substantive_answers,
        respondent_items.favorable_answers,
        case
            when reporting_levels.reporting_level = 'school' then respondent_items.school_id
            else respondent_items.district_id
        end as entity_id
    from respondent_items
    inner join subgroups
        on respondent_items.response_id = subgroups.response_id
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
        canonical_item_id,
        subgroup_category,
        subgroup_value,
        count(*) as respondents,
        avg(item_score) as item_mean,
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
        canonical_item_id,
        subgroup_category,
        subgroup_value
)

select * from final
