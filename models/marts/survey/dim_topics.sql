with

topics as (
    select * from {{ ref('topics') }}
),

items as (
    select * from {{ ref('canonical_items') }}
),

topic_items as (
    select
        topic_id,
        count(*) as items,
        count(case when reverse_coded then 1 end) as reverse_coded_items,
        min(scale_points) as scale_points,
        min(favorable_threshold) as favorable_threshold
    from items
    group by topic_id
),

final as (
    select
        topics.topic_id,
        topics.topic_name,
        topics.description as topic_description,
        topics.respondent_type,
        topic_items.scale_points,
        topic_items.favorable_threshold,
        coalesce(topic_items.items, 0) as items,
        coalesce(topic_items.reverse_coded_items, 0) as reverse_coded_items
    from topics
    left join topic_items
        on topics.topic_id = topic_items.topic_id
)

select * from final
