{{ school_year_partitioned() }}
{#-
  Every cell the results marts publish, topic and item cells in one list, each with
  its respondents and cell_id: the cell's rank within its school year, smallest first
  (fewest respondents, then the cell's key), a total order that complementary
  suppression follows to choose the cells it adds (int_result_cells_suppressed; its
  relations never cross a school year). The year's number goes in front (x 10^10), so
  that ids stay unique across years rebuilt at different times. canonical_item_id is ''
  on topic cells.
-#}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

topic_cells as (
    select
        'topic' as result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        district_id,
        topic_id,
        '' as canonical_item_id,
        subgroup_category,
        subgroup_value,
        respondents
    from {{ ref('int_topic_results_aggregated') }}
    where {{ in_changed_school_years('school_year') }}
),

item_cells as (
    select
        'item' as result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        district_id,
        topic_id,
        canonical_item_id,
        subgroup_category,
        subgroup_value,
        respondents
    from {{ ref('int_item_results_aggregated') }}
    where {{ in_changed_school_years('school_year') }}
),

cells as (
    select * from topic_cells
    union all
    select * from item_cells
),

final as (
    select
        {{ school_year_number('school_year') }} * 10000000000 + row_number() over (
            partition by school_year
            order by
                respondents,
                result_kind,
                respondent_type,
                reporting_level,
                entity_id,
                topic_id,
                canonical_item_id,
                subgroup_category,
                subgroup_value
        ) as cell_id,
        result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        district_id,
        topic_id,
        canonical_item_id,
        subgroup_category,
        subgroup_value,
        respondents
    from cells
)

select * from final
