with

questions as (
    select
        question_id,
        response_options
    from {{ ref('stg_replica__survey_questions') }}
),

options as (
    {{ unnest_response_options('questions', 'question_id', 'response_options') }}
),

non_substantive_labels as (
    select
        {{ normalize_option_label('option_label') }} as label_key,
        min(reason) as reason
    from {{ ref('non_substantive_options') }}
    group by {{ normalize_option_label('option_label') }}
),

final as (
    select
        options.question_id,
        options.option_position,
        options.option_value,
        options.option_label,
        {{ normalize_option_label('options.option_label') }} as option_label_key,
        non_substantive_labels.reason as non_substantive_reason
    from options
    left join non_substantive_labels
        on {{ normalize_option_label('options.option_label') }} = non_substantive_labels.label_key
)

select * from final
