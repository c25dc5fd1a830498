{#-
  Every current answer of an existing response to an existing question, resolved and
  scored. A view over every answer; the rules live in the scored_answers macro, which
  fct_question_responses also applies to just the answers it rebuilds.

  An answer is an option's value ("4") or, on some clients' forms, its label ("Agree",
  matched case- and whitespace-insensitively against the question's options); anything
  else (open text, unknown labels) resolves to no option. It is substantive when the
  question is mapped, the option's value lies on the canonical scale (1..scale_points)
  and the option's label is not in non_substantive_options.
-#}
{{ scored_answers(ref('stg_replica__question_responses')) }}
