-- Topics of the item bank without a <topic_id>_score column in respondents_wide.
{%- set relation = ref('respondents_wide') %}
select topics.topic_id
from {{ ref('topics') }} as topics
where lower(topics.topic_id || '_score') not in (
    select lower(column_name)
    from information_schema.columns
    where lower(table_schema) = lower('{{ relation.schema }}')
        and lower(table_name) = lower('{{ relation.identifier }}')
)
