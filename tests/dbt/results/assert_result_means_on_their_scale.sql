-- A topic's or an item's mean lies on its scale: at most its scale points (the item
-- bank's; a topic's items share one scale, assert_topic_items_share_one_scale). Fails
-- with each result row above its scale.
with

topic_scales as (
    select
        topic_id,
        max(scale_points) as scale_points
    from {{ ref('canonical_items') }}
    group by topic_id
),

topics_above as (
    select
        'topic_results' as mart,
        results.school_year,
        results.entity_id,
        results.topic_id as measure_id,
        results.topic_mean as mean_value,
        topic_scales.scale_points
    from {{ ref('topic_results') }} as results
    inner join topic_scales on results.topic_id = topic_scales.topic_id
    where results.topic_mean > topic_scales.scale_points
),

items_above as (
    select
        'item_results' as mart,
        results.school_year,
        results.entity_id,
        results.canonical_item_id as measure_id,
        results.item_mean as mean_value,
        items.scale_points
    from {{ ref('item_results') }} as results
    inner join {{ ref('canonical_items') }} as items on results.canonical_item_id = items.canonical_item_id
    where results.item_mean > items.scale_points
),

final as (
    select * from topics_above
    union all
    select * from items_above
)

select * from final
