{#-
  Mapping order: the normalized wording equals a canonical item's normalized text
  (exact); else a question_crosswalk row for the district (a row for this very survey wins
  over a district-wide row); else unmapped (canonical_item_id null).
-#}
with

questions as (
    select
        question_id,
        survey_id,
        question_position,
        question_text,
        response_options is null as is_open_ended,
        {{ normalize_question_text('question_text') }} as question_text_key
    from {{ ref('stg_replica__survey_questions') }}
),

surveys as (
    select
        survey_id,
        district_id,
        respondent_type,
        school_year
    from {{ ref('stg_replica__surveys') }}
),

canonical_items as (
    select
        canonical_item_id,
        topic_id,
        canonical_text,
        {{ normalize_question_text('canonical_text') }} as canonical_text_key,
        scale_points,
        reverse_coded,
        favorable_threshold
    from {{ ref('canonical_items') }}
),

crosswalk as (
    select
        district_id,
        nullif(trim(survey_id), '') as survey_id,
        {{ normalize_question_text('question_text') }} as question_text_key,
        canonical_item_id
    from {{ ref('question_crosswalk') }}
),

options as (
    select * from {{ ref('int_question_options_parsed') }}
),

option_summary as (
    select
        question_id,
        count(*) as option_count,
        count(case when non_substantive_reason is null then 1 end) as option_scale_points,
        {{ dbt.listagg(
            "cast(option_value as varchar) || '=' || option_label_key || '=' || coalesce(non_substantive_reason, '')",
            "'|'",
            "order by option_position") }} as options_signature
    from options
    group by question_id
),

exact_matches as (
    select
        questions.question_id,
        canonical_items.canonical_item_id
    from questions
    inner join canonical_items
        on questions.question_text_key = canonical_items.canonical_text_key
),

crosswalk_matches as (
    select
        questions.question_id,
        crosswalk.canonical_item_id
    from questions
    inner join surveys
        on questions.survey_id = surveys.survey_id
    inner join crosswalk
        on surveys.district_id = crosswalk.district_id
        and questions.question_text_key = crosswalk.question_text_key
        and (questions.survey_id = crosswalk.survey_id or crosswalk.survey_id is null)
    qualify row_number() over (
            partition by questions.question_id
            order by case when crosswalk.survey_id is null then 1 else 0 end
        ) = 1
),

mapped as (
    select
        questions.question_id,
        questions.survey_id,
        surveys.district_id,
        surveys.respondent_type,
        surveys.school_year,
        questions.question_position,
        questions.question_text,
        questions.question_text_key,
        questions.is_open_ended,
        option_summary.options_signature,
        coalesce(exact_matches.canonical_item_id, crosswalk_matches.canonical_item_id) as canonical_item_id,
        case
            when exact_matches.canonical_item_id is not null then 'exact'
            when crosswalk_matches.canonical_item_id is not null then 'crosswalk'
            else 'unmapped'
        end as mapping_method,
        coalesce(option_summary.option_count, 0) as option_count,
        coalesce(option_summary.option_scale_points, 0) as option_scale_points
    from questions
    left join surveys
        on questions.survey_id = surveys.survey_id
    left join exact_matches
        on questions.question_id = exact_matches.question_id
    left join crosswalk_matches
        on questions.question_id = crosswalk_matches.question_id
    left join option_summary
        on questions.question_id = option_summary.question_id
),

final as (
    select
        mapped.question_id,
        mapped.survey_id,
        mapped.district_id,
        mapped.respondent_type,
        mapped.school_year,
        mapped.question_position,
        mapped.question_text,
        mapped.question_text_key,
        mapped.is_open_ended,
        mapped.canonical_item_id,
        canonical_items.canonical_text,
        canonical_items.topic_id,
        mapped.mapping_method,
        canonical_items.scale_points,
        mapped.option_count,
        mapped.option_scale_points,
        canonical_items.reverse_coded,
        canonical_items.favorable_threshold,
        {{ dbt.hash(
            "coalesce(mapped.survey_id, '') || '~' || coalesce(mapped.canonical_item_id, '') || '~'"
            ~ " || coalesce(canonical_items.topic_id, '') || '~' || mapped.mapping_method || '~'"
            ~ " || coalesce(cast(canonical_items.scale_points as varchar), '') || '~'"
            ~ " || coalesce(cast(canonical_items.reverse_coded as varchar), '') || '~'"
            ~ " || coalesce(cast(canonical_items.favorable_threshold as varchar), '') || '~'"
            ~ " || coalesce(mapped.options_signature, '')") }} as mapping_fingerprint
    from mapped
    left join canonical_items
        on mapped.canonical_item_id = canonical_items.canonical_item_id
)

select * from final
