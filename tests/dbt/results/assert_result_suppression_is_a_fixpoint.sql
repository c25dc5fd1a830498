-- Relations of published result cells that give a suppressed cell, or a group of fewer
-- than min_reporting_n respondents, back (macro suppression_checks), on what
-- topic_results and item_results publish.
with

cells as (
    select * from {{ ref('int_result_cells_ranked') }}
),

relations as (
    select * from {{ ref('int_result_relations_listed') }}
),

published as (
    select
        'topic' as result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        '' as canonical_item_id,
        topic_id,
        subgroup_category,
        subgroup_value,
        is_suppressed
    from {{ ref('topic_results') }}
    union all
    select
        'item' as result_kind,
        school_year,
        respondent_type,
        reporting_level,
        entity_id,
        canonical_item_id,
        topic_id,
        subgroup_category,
        subgroup_value,
        is_suppressed
    from {{ ref('item_results') }}
),

members as (
    select
        relations.relation_id,
        relations.relation_kind,
        relations.cell_id,
        relations.is_total,
        relations.respondents,
        published.is_suppressed
    from relations
    inner join cells
        on relations.cell_id = cells.cell_id
    inner join published
        on cells.result_kind = published.result_kind
        and cells.school_year = published.school_year
        and cells.respondent_type = published.respondent_type
        and cells.reporting_level = published.reporting_level
        and cells.entity_id = published.entity_id
        and cells.canonical_item_id = published.canonical_item_id
        and cells.topic_id = published.topic_id
        and cells.subgroup_category = published.subgroup_category
        and cells.subgroup_value = published.subgroup_value
),

{{ suppression_checks('members', 'published') }}

select * from published_violations
