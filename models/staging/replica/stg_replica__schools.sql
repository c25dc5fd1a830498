with

latest as (
    {{ current_state(source('replica', 'schools'), ['school_id']) }}
),

renamed as (
    select
        school_id,
        district_id,
        trim(name) as school_name,
        nullif(trim(nces_school_id), '') as nces_school_id,
        nullif(upper(replace(grades_served, ' ', '')), '') as grades_served,
        cast(frl_percent as double) as frl_percent,
        _ts as changed_at
    from latest
)

select * from renamed
