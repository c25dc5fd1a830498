{#- The current_answers macro holds the SQL: int_question_responses_scored reuses it for the answers it rescores. -#}
{{ current_answers(source('replica', 'question_responses')) }}
