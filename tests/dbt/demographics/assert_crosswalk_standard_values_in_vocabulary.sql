-- Every crosswalk row maps to a value of its field's standard vocabulary (marts contract),
-- so a typo in a seed ("True", "Female") fails here instead of becoming a silent null.
with

crosswalk as (
    select field, code, standard_value, 'xwalk_demographic_codes' as seed
    from {{ ref('xwalk_demographic_codes') }}

    union all

    select field, code, standard_value, 'xwalk_district_demographic_overrides' as seed
    from {{ ref('xwalk_district_demographic_overrides') }}
)

select *
from crosswalk
where not (
    (field = 'grade_level' and standard_value in (
        'PK', 'KG', '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', 'UG'))
    or (field = 'gender' and standard_value in ('F', 'M', 'X', 'Unknown'))
    or (field = 'race' and standard_value in (
        'American Indian or Alaska Native', 'Asian', 'Black or African American',
        'Native Hawaiian or Other Pacific Islander', 'White', 'Middle Eastern or North African'))
    or (field in ('hispanic_latino', 'yes_no', 'english_learner', 'iep', 'section_504')
        and standard_value in ('true', 'false'))
    or (field = 'lunch_status' and standard_value in ('Free', 'Reduced', 'Paid'))
    or (field = 'locale' and standard_value in ('City', 'Suburb', 'Town', 'Rural'))
)
