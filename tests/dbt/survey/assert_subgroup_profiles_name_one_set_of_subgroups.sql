-- A subgroup_profile that does not name one set of subgroups: a category with two values,
-- or a category that some of the profile's responses are not in (two sets hashed alike).
-- Results are aggregated once per profile and then spread over its subgroups
-- (macros/survey/results_by_reporting_level.sql), so such a profile would count
-- responses in subgroups they are not in.
with

subgroups as (
    select * from {{ ref('int_respondent_subgroups_assigned') }}
),

profile_responses as (
    select
        subgroup_profile,
        count(*) as responses
    from subgroups
    where subgroup_category = 'all'
    group by subgroup_profile
),

profile_categories as (
    select
        subgroup_profile,
        subgroup_category,
        count(distinct subgroup_value) as subgroup_values,
        count(*) as responses
    from subgroups
    group by subgroup_profile, subgroup_category
)

select
    profile_categories.subgroup_profile,
    profile_categories.subgroup_category,
    profile_categories.subgroup_values,
    profile_categories.responses as responses_in_category,
    profile_responses.responses as responses_in_profile
from profile_categories
left join profile_responses
    on profile_categories.subgroup_profile = profile_responses.subgroup_profile
where
    profile_categories.subgroup_values > 1
    or profile_responses.responses is null
    or profile_categories.responses <> profile_responses.responses
