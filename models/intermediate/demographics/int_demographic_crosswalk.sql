{#-
  Every district's crosswalk, resolved: for each district, field and code, the one
  standard value that applies. A district override wins over the field's global row,
  which wins over the global yes/no row (for the four flags).
-#}
{%- set flag_fields = ['hispanic_latino', 'english_learner', 'iep', 'section_504'] -%}

with

districts as (
    select district_id from {{ ref('stg_replica__districts') }}
),

global_codes as (
    select * from {{ ref('xwalk_demographic_codes') }}
),

district_codes as (
    select * from {{ ref('xwalk_district_demographic_overrides') }}
),

global_by_field as (
    select
        field,
        code,
        standard_value,
        2 as priority
    from global_codes
    where field <> 'yes_no'
    {%- for flag_field in flag_fields %}

    union all

    select
        '{{ flag_field }}' as field,
        code,
        standard_value,
        3 as priority
    from global_codes
    where field = 'yes_no'
    {%- endfor %}
),

candidates as (
    select
        districts.district_id,
        global_by_field.field,
        global_by_field.code,
        global_by_field.standard_value,
        global_by_field.priority,
        'global' as mapped_by
    from districts
    cross join global_by_field

    union all

    select
        district_id,
        field,
        code,
        standard_value,
        1 as priority,
        'district override' as mapped_by
    from district_codes
),

keyed as (
    select
        *,
        {{ code_match_key('code') }} as code_key
    from candidates
),

resolved as (
    select
        district_id,
        field,
        code_key,
        code as crosswalk_code,
        standard_value,
        mapped_by
    from keyed
    qualify row_number() over (partition by district_id, field, code_key order by priority) = 1
)

select * from resolved
