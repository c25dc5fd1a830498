{#-
  Both race/ethnicity roll-ups of the marts contract, from the same per-student race set
  and Hispanic/Latino flag. Race codes the crosswalk does not know are left out of the
  set; a student with no known race and no Hispanic flag is Unknown.
-#}

with

students as (
    select
        student_id,
        hispanic_latino
    from {{ ref('int_students_demographics_normalized') }}
),

races as (
    select distinct
        student_id,
        standard_value as race
    from {{ ref('int_student_demographic_codes_mapped') }}
    where field = 'race'
        and standard_value is not null
),

-- The 1997 federal standard has no MENA category: MENA counts as White.
race_sets as (
    select
        student_id,
        race,
        case when race = 'Middle Eastern or North African' then 'White' else race end as federal_race
    from races
),

race_counts as (
    select
        student_id,
        count(distinct race) as races_2024,
        max(race) as race_2024_if_single,
        count(distinct federal_race) as races_federal,
        max(federal_race) as race_federal_if_single
    from race_sets
    group by student_id
),

rolled_up as (
    select
        students.student_id,
        case
            when students.hispanic_latino then 'Hispanic or Latino'
            when race_counts.races_federal > 1 then 'Two or more races'
            when race_counts.races_federal = 1 then race_counts.race_federal_if_single
            else 'Unknown'
        end as race_ethnicity_federal,
        case
            when coalesce(race_counts.races_2024, 0)
                + case when students.hispanic_latino then 1 else 0 end > 1
                then 'Multiracial and/or Multiethnic'
            when students.hispanic_latino then 'Hispanic or Latino'
            when race_counts.races_2024 = 1 then race_counts.race_2024_if_single
            else 'Unknown'
        end as race_ethnicity_2024
    from students
    left join race_counts
        on students.student_id = race_counts.student_id
)

select * from rolled_up
