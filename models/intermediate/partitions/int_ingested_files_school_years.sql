{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        tmp_relation_type=incremental_tmp_relation_type()
    )
}}
{#-
  Which school years each loaded extract file touches: what the models partitioned by
  school year rebuild (macros/survey/school_year_partitions.sql). One row per file with a
  null school_year (the file is mapped), plus one per school year it touches:
    - survey_responses and question_responses files: the years of the surveys of the
      responses they change (every version of each response in the change log, so a
      response moved to another survey or withdrawn counts in both years; '' for a
      response whose survey is not loaded);
    - students files: the years in which those students responded (their demographics
      decide the subgroups);
    - every other table's file (districts, schools, surveys, survey_questions,
      survey_invitations): '*', every year. These arrive rarely.
  Incremental: each build maps the ledger's files not mapped yet; a file is mapped once,
  from the change logs as they are then (a response that arrives later is mapped by its
  own file).
-#}
-- depends_on: {{ source('replica', 'districts') }}
-- depends_on: {{ source('replica', 'schools') }}
-- depends_on: {{ source('replica', 'surveys') }}
-- depends_on: {{ source('replica', 'survey_questions') }}
-- depends_on: {{ source('replica', 'survey_invitations') }}
with

ledger as (
    select
        file_name,
        table_name,
        loaded_at
    from {{ source('replica', 'ingest_ledger') }}
),

new_files as (
    select
        file_name,
        table_name
    from ledger
    {% if is_incremental() -%}
        where file_name not in (select mapped.file_name from {{ this }} as mapped)
    {%- endif %}
),

survey_years as (
    select distinct
        survey_id,
        coalesce(trim(school_year), '') as school_year
    from {{ source('replica', 'surveys') }}
),

response_versions as (
    select
        response_id,
        survey_id,
        student_id
    from {{ source('replica', 'survey_responses') }}
),

response_years as (
    select distinct
        response_versions.response_id,
        coalesce(survey_years.school_year, '') as school_year
    from response_versions
    left join survey_years
        on response_versions.survey_id = survey_years.survey_id
    where response_versions.survey_id is not null
),

student_years as (
    select distinct
        response_versions.student_id,
        coalesce(survey_years.school_year, '') as school_year
    from response_versions
    left join survey_years
        on response_versions.survey_id = survey_years.survey_id
    where response_versions.student_id is not null
        and response_versions.survey_id is not null
),

changed_responses as (
    select
        answers._source_file as file_name,
        answers.response_id
    from {{ source('replica', 'question_responses') }} as answers
    inner join new_files
        on answers._source_file = new_files.file_name

    union

    select
        responses._source_file as file_name,
        responses.response_id
    from {{ source('replica', 'survey_responses') }} as responses
    inner join new_files
        on responses._source_file = new_files.file_name
),

changed_students as (
    select distinct
        students._source_file as file_name,
        students.student_id
    from {{ source('replica', 'students') }} as students
    inner join new_files
        on students._source_file = new_files.file_name
),

file_years as (
    select
        file_name,
        cast(null as varchar) as school_year
    from new_files

    union all

    select distinct
        changed_responses.file_name,
        response_years.school_year
    from changed_responses
    inner join response_years
        on changed_responses.response_id = response_years.response_id

    union all

    select distinct
        changed_students.file_name,
        student_years.school_year
    from changed_students
    inner join student_years
        on changed_students.student_id = student_years.student_id

    union all

    select
        file_name,
        '*' as school_year
    from new_files
    where table_name not in ('survey_responses', 'question_responses', 'students')
),

final as (
    select
        file_years.file_name,
        new_files.table_name,
        file_years.school_year
    from file_years
    inner join new_files
        on file_years.file_name = new_files.file_name
)

select * from final
