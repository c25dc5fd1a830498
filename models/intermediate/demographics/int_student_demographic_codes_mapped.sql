{#-
  Every demographic code of every student, with the standard value its district's
  crosswalk gives it (null when the crosswalk has no row for it). The cfg_unmapped_*
  tests read this model; int_students_demographics_normalized pivots it back.
-#}
{%- set scalar_fields = [
    'grade_level', 'gender', 'hispanic_latino', 'english_learner', 'iep', 'section_504', 'lunch_status'
] -%}

with

students as (
    select * from {{ ref('stg_replica__students') }}
),

race_codes as (
    select * from {{ ref('int_student_races_split') }}
),

crosswalk as (
    select * from {{ ref('int_demographic_crosswalk') }}
),

codes as (
    {%- for field in scalar_fields %}
    select
        student_id,
        district_id,
        '{{ field }}' as field,
        {{ field }}_code as raw_code
    from students
    where {{ field }}_code is not null

    union all
    {% endfor %}
    select
        student_id,
        district_id,
        'race' as field,
        race_code as raw_code
    from race_codes
),

mapped as (
    select
        codes.student_id,
        codes.district_id,
        codes.field,
        codes.raw_code,
        crosswalk.standard_value,
        crosswalk.mapped_by
    from codes
    left join crosswalk
        on codes.district_id = crosswalk.district_id
        and codes.field = crosswalk.field
        and {{ code_match_key('codes.raw_code') }} = crosswalk.code_key
)

select * from mapped
