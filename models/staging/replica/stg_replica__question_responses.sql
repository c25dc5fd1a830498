with

latest as (
    {{ current_state(source('replica', 'question_responses'), ['response_id', 'question_id']) }}
),

renamed as (
    select
        response_id,
        question_id,
        nullif(trim(value), '') as answer_value,
        _seq as change_seq,
        _ts as changed_at
    from latest
)

select * from renamed
