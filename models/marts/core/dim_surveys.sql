with

surveys as (
    select * from {{ ref('stg_replica__surveys') }}
),

districts as (
    select * from {{ ref('dim_districts') }}
),

final as (
    select
        surveys.survey_id,
        surveys.district_id,
        districts.district_name,
        surveys.survey_title,
        surveys.respondent_type,
        surveys.school_year,
        surveys.opens_on,
        surveys.closes_on,
        {{ dbt.datediff('surveys.opens_on', 'surveys.closes_on', 'day') }} + 1 as window_days -- noqa: LT05
    from surveys
    left join districts
        on surveys.district_id = districts.district_id
)

select * from final
