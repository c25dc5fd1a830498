-- Mapped questions whose on-scale option count differs from their canonical item's scale points.
select
    question_id,
    survey_id,
    district_id,
    question_text,
    canonical_item_id,
    mapping_method,
    scale_points,
    option_scale_points
from {{ ref('int_questions_mapped') }}
where canonical_item_id is not null
    and option_scale_points <> scale_points
