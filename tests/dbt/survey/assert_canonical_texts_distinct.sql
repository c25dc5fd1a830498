-- Two canonical items whose texts normalize alike: a question worded that way could not be mapped exactly.
select
    {{ normalize_question_text('canonical_text') }} as canonical_text_key,
    count(*) as items
from {{ ref('canonical_items') }}
group by {{ normalize_question_text('canonical_text') }}
having count(*) > 1
