-- No two rows of a crosswalk seed match the same code (compared as districts' codes are:
-- case-insensitively, ignoring whitespace), so which row applies is never arbitrary.
with

crosswalk as (
    select
        'xwalk_demographic_codes' as seed,
        cast(null as varchar) as district_id,
        field,
        {{ code_match_key('code') }} as code_key
    from {{ ref('xwalk_demographic_codes') }}

    union all

    select
        'xwalk_district_demographic_overrides' as seed,
        district_id,
        field,
        {{ code_match_key('code') }} as code_key
    from {{ ref('xwalk_district_demographic_overrides') }}
)

select seed, district_id, field, code_key, count(*) as crosswalk_rows
from crosswalk
group by seed, district_id, field, code_key
having count(*) > 1
