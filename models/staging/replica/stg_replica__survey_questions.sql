with

latest as (
    {{ current_state(source('replica', 'survey_questions'), ['question_id']) }}
),

renamed as (
    select
        question_id,
        survey_id,
        cast(position as integer) as question_position,
        trim(question_text) as question_text,
        response_options,
        _extra as extra_attributes,
        _ts as changed_at
    from latest
)

select * from renamed
