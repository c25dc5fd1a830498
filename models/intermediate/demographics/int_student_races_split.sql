with

students as (
    select
        student_id,
        district_id,
        race_codes
    from {{ ref('stg_replica__students') }}
),

race_codes as (
    {{ split_codes('students', ['student_id', 'district_id'], 'race_codes') }}
),

distinct_codes as (
    select distinct
        student_id,
        district_id,
        code as race_code
    from race_codes
)

select * from distinct_codes
