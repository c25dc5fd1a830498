{#-
  A replica table's change log reduced to current state: for each key, the change with
  the highest `_seq` (the contract's order), rows whose last change is a delete removed.
  tests/dbt/survey/assert_fct_question_responses_holds_the_current_answers.sql computes
  the same rule independently for answers (max_by(_op, _seq)): change both together.
-#}
{% macro current_state(source_relation, key_columns) -%}
    {{ return(adapter.dispatch('current_state', 'survey_warehouse')(source_relation, key_columns)) }}
{%- endmacro %}

{% macro default__current_state(source_relation, key_columns) -%}
    select *
    from (
        select *
        from {{ source_relation }}
        qualify row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by _seq desc
        ) = 1
    ) as latest_change
    where _op <> 'd'
{%- endmacro %}
