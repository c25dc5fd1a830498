{#-
  Answers resolved and scored (see int_question_responses_scored for the rules):
  `current_answers` is a relation or CTE of answers in current state with the columns of
  stg_replica__question_responses. The model scores every answer with it;
  fct_question_responses's incremental branch scores only the answers it rebuilds.
-#}
{% macro scored_answers(current_answers) -%}
    with

    answers as (
        select
            response_id,
            question_id,
            answer_value,
            change_seq
        from {{ current_answers }}
    ),

    responses as (
        select response_id
        from {{ ref('stg_replica__survey_responses') }}
    ),

    questions as (
        select
            question_id,
            survey_id,
            canonical_item_id,
            topic_id,
            mapping_method,
            is_open_ended,
            scale_points,
            reverse_coded,
            favorable_threshold,
            mapping_fingerprint
        from {{ ref('int_questions_mapped') }}
    ),

    options as (
        select
            question_id,
            option_value,
            option_label,
            option_label_key,
            option_position,
            non_substantive_reason
        from {{ ref('int_question_options_parsed') }}
    ),

    -- A value or label shown twice on one form resolves to the first option showing it.
    options_by_value as (
        select *
        from options
        qualify row_number() over (partition by question_id, option_value order by option_position) = 1
    ),

    options_by_label as (
        select *
        from options
        qualify row_number() over (partition by question_id, option_label_key order by option_position) = 1
    ),

    non_substantive_labels as (
        select {{ normalize_option_label('option_label') }} as label_key
        from {{ ref('non_substantive_options') }}
    ),

    answers_in_scope as (
        select
            answers.response_id,
            answers.question_id,
            answers.answer_value,
            answers.change_seq,
            try_cast(answers.answer_value as integer) as answer_as_integer,
            {{ normalize_option_label('answers.answer_value') }} as answer_label_key
        from answers
        inner join responses
            on answers.response_id = responses.response_id
        inner join questions
            on answers.question_id = questions.question_id
    ),

    resolved as (
        select
            answers_in_scope.response_id,
            answers_in_scope.question_id,
            answers_in_scope.answer_value,
            answers_in_scope.change_seq,
            answers_in_scope.answer_label_key,
            coalesce(by_value.option_value, by_label.option_value) as option_value,
            case
                when by_value.option_value is not null then 'value'
                when by_label.option_value is not null then 'label'
            end as answered_by
        from answers_in_scope
        left join options_by_value as by_value
            on answers_in_scope.question_id = by_value.question_id
            and answers_in_scope.answer_as_integer = by_value.option_value
        left join options_by_label as by_label
            on answers_in_scope.question_id = by_label.question_id
            and answers_in_scope.answer_label_key = by_label.option_label_key
    ),

    classified as (
        select
            resolved.response_id,
            resolved.question_id,
            questions.survey_id,
            questions.canonical_item_id,
            questions.topic_id,
            questions.mapping_method,
            resolved.answer_value,
            resolved.option_value,
            options.option_label,
            resolved.answered_by,
            questions.scale_points,
            questions.reverse_coded,
            questions.favorable_threshold,
            questions.mapping_fingerprint,
            resolved.change_seq,
            case
                when resolved.answer_value is null then 'skipped'
                when questions.is_open_ended then 'open_text'
                when questions.canonical_item_id is null then 'unmapped_question'
                when options.non_substantive_reason is not null then options.non_substantive_reason
                when
                    resolved.option_value is null and non_substantive_labels.label_key is not null
                    then 'non_substantive_label'
                when resolved.option_value is null then 'not_an_option'
                when resolved.option_value < 1 or resolved.option_value > questions.scale_points then 'off_scale'
            end as non_substantive_reason
        from resolved
        inner join questions
            on resolved.question_id = questions.question_id
        left join options_by_value as options
            on resolved.question_id = options.question_id
            and resolved.option_value = options.option_value
        left join non_substantive_labels
            on resolved.answer_label_key = non_substantive_labels.label_key
    ),

    scored as (
        select
            response_id,
            question_id,
            survey_id,
            canonical_item_id,
            topic_id,
            mapping_method,
            answer_value,
            option_value,
            option_label,
            answered_by,
            non_substantive_reason,
            favorable_threshold,
            mapping_fingerprint,
            change_seq,
            non_substantive_reason is null as is_substantive,
            case
                when non_substantive_reason is not null then null
                when reverse_coded then 1 + scale_points - option_value
                else option_value
            end as scored_value
        from classified
    ),

    final as (
        select
            response_id,
            question_id,
            survey_id,
            canonical_item_id,
            topic_id,
            mapping_method,
            answer_value,
            option_value,
            option_label,
            answered_by,
            is_substantive,
            non_substantive_reason,
            scored_value,
            mapping_fingerprint,
            change_seq,
            case when is_substantive then scored_value >= favorable_threshold end as is_favorable
        from scored
    )

    select * from final
{%- endmacro %}
