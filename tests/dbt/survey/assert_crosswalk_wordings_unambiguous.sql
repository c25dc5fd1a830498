-- One district's wording (for one survey, or for all) mapped to more than one canonical item.
select
    district_id,
    coalesce(nullif(trim(survey_id), ''), '(all surveys)') as survey_scope,
    {{ normalize_question_text('question_text') }} as question_text_key,
    count(distinct canonical_item_id) as canonical_items
from {{ ref('question_crosswalk') }}
group by
    district_id,
    coalesce(nullif(trim(survey_id), ''), '(all surveys)'),
    {{ normalize_question_text('question_text') }}
having count(distinct canonical_item_id) > 1
