{%- set flag_fields = ['hispanic_latino', 'english_learner', 'iep', 'section_504'] -%}

with

students as (
    select
        student_id,
        district_id,
        school_id
    from {{ ref('stg_replica__students') }}
),

codes as (
    select * from {{ ref('int_student_demographic_codes_mapped') }}
    where field <> 'race'
),

pivoted as (
    select
        student_id,
        max(case when field = 'grade_level' then standard_value end) as grade_level,
        max(case when field = 'gender' then standard_value end) as gender,
        {%- for flag_field in flag_fields %}
        max(case when field = '{{ flag_field }}' then standard_value end) as {{ flag_field }},
        {%- endfor %}
        max(case when field = 'lunch_status' then standard_value end) as lunch_status
    from codes
    group by student_id
),

normalized as (
    select
        students.student_id,
        students.district_id,
        students.school_id,
        coalesce(pivoted.grade_level, 'Unknown') as grade_level,
        coalesce(pivoted.gender, 'Unknown') as gender,
        {%- for flag_field in flag_fields %}
        case pivoted.{{ flag_field }} when 'true' then true when 'false' then false end as {{ flag_field }},
        {%- endfor %}
        coalesce(pivoted.lunch_status, 'Unknown') as lunch_status,
        case
            when pivoted.lunch_status in ('Free', 'Reduced') then true
            when pivoted.lunch_status = 'Paid' then false
        end as econ_disadvantaged
    from students
    left join pivoted
        on students.student_id = pivoted.student_id
)

select * from normalized
