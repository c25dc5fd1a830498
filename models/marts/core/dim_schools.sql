with

schools as (
    select * from {{ ref('stg_replica__schools') }}
),

districts as (
    select * from {{ ref('dim_districts') }}
),

grade_codes as (
    select
        district_id,
        code_key,
        standard_value as grade_level
    from {{ ref('int_demographic_crosswalk') }}
    where field = 'grade_level'
),

-- "K-5" spans K to 5; a single grade ("K", "9") is both ends.
grade_span as (
    select
        school_id,
        district_id,
        split_part(grades_served, '-', 1) as lowest_code,
        coalesce(nullif(split_part(grades_served, '-', 2), ''), split_part(grades_served, '-', 1)) as highest_code
    from schools
),

grade_ends as (
    select
        grade_span.school_id,
        lowest.grade_level as lowest_grade,
        highest.grade_level as highest_grade
    from grade_span
    left join grade_codes as lowest
        on grade_span.district_id = lowest.district_id
        and {{ code_match_key('grade_span.lowest_code') }} = lowest.code_key
    left join grade_codes as highest
        on grade_span.district_id = highest.district_id
        and {{ code_match_key('grade_span.highest_code') }} = highest.code_key
),

-- PK = -1, KG = 0, 01..12 = 1..12; UG has no place on the scale.
grade_numbers as (
    select
        school_id,
        lowest_grade,
        highest_grade,
        {{ grade_number('lowest_grade') }} as lowest_grade_number,
        {{ grade_number('highest_grade') }} as highest_grade_number
    from grade_ends
),

final as (
    select
        schools.school_id,
        schools.district_id,
        districts.district_name,
        districts.state_code,
        districts.locale_category,
        schools.school_name,
        schools.nces_school_id,
        schools.grades_served,
        grade_numbers.lowest_grade,
        grade_numbers.highest_grade,
        case
            when schools.grades_served is null then 'unknown'
            when grade_numbers.lowest_grade_number is null
                or grade_numbers.highest_grade_number is null
                or grade_numbers.lowest_grade_number > grade_numbers.highest_grade_number
                then 'other'
            when grade_numbers.highest_grade_number <= 5 then 'elementary'
            when grade_numbers.lowest_grade_number >= 6 and grade_numbers.highest_grade_number <= 8 then 'middle'
            when grade_numbers.lowest_grade_number >= 9 then 'high'
            else 'multi-level'
        end as school_level,
        schools.frl_percent,
        case
            when schools.frl_percent is null then 'Unknown'
            when schools.frl_percent <= 25 then 'Low (0-25%)'
            when schools.frl_percent <= 50 then 'Mid-low (25-50%)'
            when schools.frl_percent <= 75 then 'Mid-high (50-75%)'
            else 'High (75-100%)'
        end as frl_band
    from schools
    left join districts
        on schools.district_id = districts.district_id
    left join grade_numbers
        on schools.school_id = grade_numbers.school_id
)

select * from final
