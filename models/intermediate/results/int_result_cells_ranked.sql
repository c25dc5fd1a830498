{#-
  Every cell the results marts publish, topic and item cells in one list, each with
  its respondents and cell_id: the cell's rank, smallest first (fewest respondents,
  then the cell's key), a total order that complementary suppression follows to choose
  the cells it adds (int_result_cells_suppressed). canonical_item_id is '' on topic cells.
-#}
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
),

cells as (
    select * from topic_cells
    union all
    select * from item_cells
),

final as (
    select
        row_number() over (
            order by
                respondents,
                result_kind,
                school_year,
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
