{#-
  Personal data (names, email, birth date, district-local id) stops here: this model
  selects none of it. Demographic codes stay in the district's coding, trimmed; the
  crosswalks in intermediate/ map them onto the standard vocabulary.
-#}
with

latest as (
    {{ current_state(source('replica', 'students'), ['student_id']) }}
),

renamed as (
    select
        student_id,
        district_id,
        school_id,
        nullif(trim(grade_level), '') as grade_level_code,
        nullif(trim(gender), '') as gender_code,
        nullif(trim(race), '') as race_codes,
        nullif(trim(hispanic_latino), '') as hispanic_latino_code,
        nullif(trim(english_learner), '') as english_learner_code,
        nullif(trim(iep), '') as iep_code,
        nullif(trim(section_504), '') as section_504_code,
        nullif(trim(lunch_status), '') as lunch_status_code,
        _ts as changed_at
    from latest
)

select * from renamed
