-- Fails with the two counts when dim_students has more or fewer rows than the roster.
with

roster as (
    select count(*) as students from {{ ref('stg_replica__students') }}
),

published as (
    select count(*) as students from {{ ref('dim_students') }}
)

select
    roster.students as roster_students,
    published.students as dim_students
from roster
cross join published
where roster.students <> published.students
