-- A topic whose items do not all have the same scale: its results would pool answers on different scales.
select
    topic_id,
    count(distinct scale_points) as scales,
    count(distinct favorable_threshold) as favorable_thresholds
from {{ ref('canonical_items') }}
group by topic_id
having count(distinct scale_points) > 1 or count(distinct favorable_threshold) > 1
