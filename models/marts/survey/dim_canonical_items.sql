with

items as (
    select * from {{ ref('canonical_items') }}
),

topics as (
    select * from {{ ref('topics') }}
),

final as (
    select
        items.canonical_item_id,
        items.canonical_text,
        items.topic_id,
        topics.topic_name,
        topics.respondent_type,
        items.scale_points,
        items.reverse_coded,
        items.favorable_threshold
    from items
    inner join topics
        on items.topic_id = topics.topic_id
)

select * from final
