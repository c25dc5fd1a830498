select
    district_id,
    grades_served,
    count(*) as schools
from {{ ref('dim_schools') }}
where grades_served is not null
    and (lowest_grade is null or highest_grade is null)
group by district_id, grades_served
