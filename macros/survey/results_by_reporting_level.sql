{#-
  The CTEs that topic and item results share, ending with `school_aggregated` and
  `aggregated`. Every scored row of `scored` (a CTE with response_id, school_year,
  respondent_type, school_id, district_id, substantive_answers, favorable_answers, the
  measure's `keys` and its `score`) counts once per subgroup of its response
  (`subgroups`, a CTE of int_respondent_subgroups_assigned: one `all` row per response,
  each row with its response's subgroup_profile) toward its school and toward its
  district.
  `aggregated` has one row per school year, respondent type, reporting level, entity
  (the school, or the district), key and subgroup, with respondents, scored_respondents
  (those with a score), score_sum, favorable_answers and substantive_answers; the models
  turn them into their grain's numbers (a mean is score_sum / scored_respondents).
  Rows are aggregated by school first, and the districts summed from their schools
  (those of no school included): the answers are read and multiplied by the subgroups
  once, not once per reporting level (EXPLAIN ANALYZE, scale 10: int_item_results_
  aggregated grouped 160 M rows). Within a school they are aggregated once per subgroup
  profile (the response's whole set of subgroups, subgroup_profile), and the profiles'
  sums then spread over their subgroups: a school's responses share far fewer profiles
  than they have subgroup rows (scale 10, one school year of items: 3.1 M scored rows
  into 0.74 M profile groups, where joining every row to its subgroups gave 16.3 M).
  Ends with a comma: more CTEs follow.
-#}
{% macro results_by_reporting_level(scored, subgroups, keys, score) -%}
{%- set school_cell = ['school_year', 'respondent_type', 'district_id', 'school_id'] + keys -%}
response_profiles as (
    select
        response_id,
        subgroup_profile
    from {{ subgroups }}
    where subgroup_category = 'all'
),

profile_subgroups as (
    select distinct
        subgroup_profile,
        subgroup_category,
        subgroup_value
    from {{ subgroups }}
),

profile_aggregated as (
    select
        {%- for column in school_cell %}
        {{ scored }}.{{ column }},
        {%- endfor %}
        response_profiles.subgroup_profile,
        count(*) as respondents,
        count({{ scored }}.{{ score }}) as scored_respondents,
        sum({{ scored }}.{{ score }}) as score_sum,
        sum({{ scored }}.favorable_answers) as favorable_answers,
        sum({{ scored }}.substantive_answers) as substantive_answers
    from {{ scored }}
    inner join response_profiles
        on {{ scored }}.response_id = response_profiles.response_id
    group by
        {%- for column in school_cell %}
        {{ scored }}.{{ column }},
        {%- endfor %}
        response_profiles.subgroup_profile
),

school_aggregated as (
    select
        {%- for column in school_cell %}
        profile_aggregated.{{ column }},
        {%- endfor %}
        profile_subgroups.subgroup_category,
        profile_subgroups.subgroup_value,
        sum(profile_aggregated.respondents) as respondents,
        sum(profile_aggregated.scored_respondents) as scored_respondents,
        sum(profile_aggregated.score_sum) as score_sum,
        sum(profile_aggregated.favorable_answers) as favorable_answers,
        sum(profile_aggregated.substantive_answers) as substantive_answers
    from profile_aggregated
    inner join profile_subgroups
        on profile_aggregated.subgroup_profile = profile_subgroups.subgroup_profile
    group by
        {%- for column in school_cell %}
        profile_aggregated.{{ column }},
        {%- endfor %}
        profile_subgroups.subgroup_category,
        profile_subgroups.subgroup_value
),

aggregated as (
    select
        school_year,
        respondent_type,
        'school' as reporting_level,
        school_id as entity_id,
        district_id,
        {%- for key in keys %}
        {{ key }},
        {%- endfor %}
        subgroup_category,
        subgroup_value,
        respondents,
        scored_respondents,
        score_sum,
        favorable_answers,
        substantive_answers
    from school_aggregated
    where school_id is not null

    union all

    select
        school_year,
        respondent_type,
        'district' as reporting_level,
        district_id as entity_id,
        district_id,
        {%- for key in keys %}
        {{ key }},
        {%- endfor %}
        subgroup_category,
        subgroup_value,
        sum(respondents) as respondents,
        sum(scored_respondents) as scored_respondents,
        sum(score_sum) as score_sum,
        sum(favorable_answers) as favorable_answers,
        sum(substantive_answers) as substantive_answers
    from school_aggregated
    where district_id is not null
    group by
        school_year,
        respondent_type,
        district_id,
        {%- for key in keys %}
        {{ key }},
        {%- endfor %}
        subgroup_category,
        subgroup_value
),
{%- endmacro %}
