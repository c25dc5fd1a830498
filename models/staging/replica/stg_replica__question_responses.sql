{#- The current_answers macro holds the SQL: fct_question_responses reuses it for the answers it rebuilds. -#}
{{ current_answers(source('replica', 'question_responses')) }}
