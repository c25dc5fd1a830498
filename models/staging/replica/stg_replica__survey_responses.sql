with

latest as (
    {{ current_state(source('replica', 'survey_responses'), ['response_id']) }}
),

renamed as (
    select
        response_id,
        survey_id,
        school_id,
        student_id,
        {{ parse_utc_timestamp('started_at') }} as started_at,
        {{ parse_utc_timestamp('submitted_at') }} as submitted_at,
        submitted_at is not null as is_complete,
        _extra as extra_attributes,
        _ts as changed_at
    from latest
)

select * from renamed
