{#-
  Students without personal data: keyed by student_key (a keyed hash of the platform id,
  macro student_key), never by the platform id, names, emails, birth dates or local ids.
-#}

with

demographics as (
    select * from {{ ref('int_students_demographics_normalized') }}
),

race_ethnicity as (
    select * from {{ ref('int_students_race_ethnicity_rolled_up') }}
),

final as (
    select
        {{ student_key('demographics.student_id') }} as student_key,
        demographics.district_id,
        demographics.school_id,
        demographics.grade_level,
        demographics.gender,
        demographics.hispanic_latino,
        race_ethnicity.race_ethnicity_federal,
        race_ethnicity.race_ethnicity_2024,
        demographics.english_learner,
        demographics.iep,
        demographics.section_504,
        demographics.lunch_status,
        demographics.econ_disadvantaged
    from demographics
    left join race_ethnicity
        on demographics.student_id = race_ethnicity.student_id
)

select * from final
