with

questions as (
    select * from {{ ref('int_questions_mapped') }}
),

final as (
    select
        question_id,
        survey_id,
        district_id,
        respondent_type,
        school_year,
        question_position,
        question_text,
        question_text_key,
        is_open_ended,
        canonical_item_id,
        canonical_text,
        topic_id,
        mapping_method,
        scale_points,
        option_count,
        option_scale_points,
        reverse_coded,
        favorable_threshold
    from questions
)

select * from final
