-- Every crosswalk row maps to a value of its field's standard vocabulary (the seed
-- demographic_vocabulary), so a typo in a seed ("True", "Female") fails here instead of
-- becoming a silent null.
with

crosswalk as (
    select field, code, standard_value, 'xwalk_demographic_codes' as seed
    from {{ ref('xwalk_demographic_codes') }}

    union all

    select field, code, standard_value, 'xwalk_district_demographic_overrides' as seed
    from {{ ref('xwalk_district_demographic_overrides') }}
),

vocabulary as (
    select field, standard_value from {{ ref('demographic_vocabulary') }}
)

select crosswalk.*
from crosswalk
left join vocabulary
    on crosswalk.field = vocabulary.field
    and crosswalk.standard_value = vocabulary.standard_value
where vocabulary.field is null
