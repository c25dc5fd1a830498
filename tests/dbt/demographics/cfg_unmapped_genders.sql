select
    district_id,
    raw_code,
    count(*) as students
from {{ ref('int_student_demographic_codes_mapped') }}
where field = 'gender'
    and standard_value is null
group by district_id, raw_code
