{{ school_year_partitioned() }}
{#-
  Percentiles of school-level percent favorable (subgroup all) among schools whose
  topic_results row is published (neither primary nor complementary suppression), per
  school level and over all levels (school_level `all`). Published (percentiles not
  null) only where at least var('benchmark_min_schools') schools from at least
  var('benchmark_min_districts') districts contribute.
-#}
-- Partitioned by school year (macros/survey/school_year_partitions.sql):
-- depends_on: {{ ref('int_school_year_builds') }}
-- depends_on: {{ ref('int_ingested_files_school_years') }}
with

school_results as (
    select
        school_year,
        respondent_type,
        entity_id as school_id,
        topic_id,
        percent_favorable
    from {{ ref('topic_results') }}
    where reporting_level = 'school'
        and subgroup_category = 'all'
        and not is_suppressed
        and {{ in_changed_school_years('school_year') }}
),

schools as (
    select
        school_id,
        district_id,
        school_level
    from {{ ref('dim_schools') }}
),

contributions as (
    select
        school_results.school_year,
        school_results.respondent_type,
        school_results.topic_id,
        schools.school_level,
        school_results.school_id,
        schools.district_id,
        school_results.percent_favorable
    from school_results
    inner join schools
        on school_results.school_id = schools.school_id

    union all

    select
        school_results.school_year,
        school_results.respondent_type,
        school_results.topic_id,
        'all' as school_level,
        school_results.school_id,
        schools.district_id,
        school_results.percent_favorable
    from school_results
    inner join schools
        on school_results.school_id = schools.school_id
),

aggregated as (
    select
        school_year,
        respondent_type,
        topic_id,
        school_level,
        count(distinct school_id) as schools,
        count(distinct district_id) as districts,
        percentile_cont(0.10) within group (order by percent_favorable) as p10_percent_favorable,
        percentile_cont(0.25) within group (order by percent_favorable) as p25_percent_favorable,
        percentile_cont(0.50) within group (order by percent_favorable) as p50_percent_favorable,
        percentile_cont(0.75) within group (order by percent_favorable) as p75_percent_favorable,
        percentile_cont(0.90) within group (order by percent_favorable) as p90_percent_favorable
    from contributions
    group by
        school_year,
        respondent_type,
        topic_id,
        school_level
),

published as (
    select
        *,
        schools >= {{ var('benchmark_min_schools') }}
        and districts >= {{ var('benchmark_min_districts') }} as is_published
    from aggregated
),

final as (
    select
        school_year,
        respondent_type,
        topic_id,
        school_level,
        schools,
        districts,
        is_published,
        case when is_published then p10_percent_favorable end as p10_percent_favorable,
        case when is_published then p25_percent_favorable end as p25_percent_favorable,
        case when is_published then p50_percent_favorable end as p50_percent_favorable,
        case when is_published then p75_percent_favorable end as p75_percent_favorable,
        case when is_published then p90_percent_favorable end as p90_percent_favorable
    from published
)

select * from final
