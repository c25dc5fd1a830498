with

latest as (
    {{ current_state(source('replica', 'survey_invitations'), ['invitation_id']) }}
),

renamed as (
    select
        invitation_id,
        survey_id,
        school_id,
        student_id,
        _extra as extra_attributes,
        _ts as changed_at
    from latest
)

select * from renamed
