with

districts as (
    select * from {{ ref('stg_replica__districts') }}
),

locale_codes as (
    select
        district_id,
        code_key,
        standard_value
    from {{ ref('int_demographic_crosswalk') }}
    where field = 'locale'
),

-- Free text is matched whole ("suburban", "42"), then by its first word, so "Rural - Remote"
-- and "Town: Fringe" need no row of their own.
locale_keys as (
    select
        district_id,
        {{ code_match_key('locale_raw') }} as whole_key,
        {{ code_match_key("split_part(trim(translate(locale_raw, ':-,', '   ')), ' ', 1)") }} as first_word_key
    from districts
),

locales as (
    select
        locale_keys.district_id,
        coalesce(whole.standard_value, first_word.standard_value) as locale_category
    from locale_keys
    left join locale_codes as whole
        on locale_keys.district_id = whole.district_id
        and locale_keys.whole_key = whole.code_key
    left join locale_codes as first_word
        on locale_keys.district_id = first_word.district_id
        and locale_keys.first_word_key = first_word.code_key
),

final as (
    select
        districts.district_id,
        districts.district_name,
        districts.state_code,
        districts.nces_lea_id,
        districts.locale_raw,
        coalesce(locales.locale_category, 'Unknown') as locale_category
    from districts
    left join locales
        on districts.district_id = locales.district_id
)

select * from final
