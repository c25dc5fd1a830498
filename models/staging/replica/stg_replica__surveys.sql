with

latest as (
    {{ current_state(source('replica', 'surveys'), ['survey_id']) }}
),

renamed as (
    select
        survey_id,
        district_id,
        trim(title) as survey_title,
        lower(trim(respondent_type)) as respondent_type,
        trim(school_year) as school_year,
        {{ parse_date('opens_on') }} as opens_on,
        {{ parse_date('closes_on') }} as closes_on,
        _extra as extra_attributes,
        _ts as changed_at
    from latest
)

select * from renamed
