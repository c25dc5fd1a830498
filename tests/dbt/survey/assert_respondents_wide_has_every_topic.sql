-- Topics of the item bank without a <topic_id>_score column in respondents_wide.
{%- set relation = ref('respondents_wide') %}
with

score_columns as (
    select lower(columns.column_name) as column_name
    from information_schema.columns as columns
    where
        lower(columns.table_schema) = lower('{{ relation.schema }}')
        and lower(columns.table_name) = lower('{{ relation.identifier }}')
),

final as (
    select topics.topic_id
    from {{ ref('topics') }} as topics
    left join score_columns
        on lower(topics.topic_id || '_score') = score_columns.column_name
    where score_columns.column_name is null
)

select * from final
