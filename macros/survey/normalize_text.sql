{#-
  Text normalization for matching, the same on every engine.

  normalize_question_text: the key a question's wording is matched on against
  canonical_items.canonical_text and question_crosswalk.question_text — lowercase,
  punctuation stripped (anything but letters, digits, underscore and whitespace),
  whitespace collapsed to one space, trimmed. Mirrors sample_design.normalize_text
  (for ASCII text).

  normalize_option_label: the key an answer sent as a label is matched on against the
  question's option labels, and option labels against non_substantive_options — lowercase,
  whitespace collapsed, trimmed; punctuation kept ("Don't know" is not "Dont know").
-#}
{% macro normalize_question_text(expression) -%}
    trim({{ regexp_replace_all(
        regexp_replace_all('lower(' ~ expression ~ ')', "'[^[:alnum:][:space:]_]'", "''"),
        "'[[:space:]]+'", "' '") }})
{%- endmacro %}

{% macro normalize_option_label(expression) -%}
    trim({{ regexp_replace_all('lower(' ~ expression ~ ')', "'[[:space:]]+'", "' '") }})
{%- endmacro %}

{#- Replace every match of a regular expression (POSIX classes work on both engines). -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all', 'survey_warehouse')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro snowflake__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}
