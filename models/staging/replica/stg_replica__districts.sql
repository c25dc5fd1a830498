with

latest as (
    {{ current_state(source('replica', 'districts'), ['district_id']) }}
),

renamed as (
    select
        district_id,
        trim(name) as district_name,
        upper(trim(state)) as state_code,
        nullif(trim(nces_lea_id), '') as nces_lea_id,
        nullif(trim(locale), '') as locale_raw,
        _ts as changed_at
    from latest
)

select * from renamed
