{#-
  student_key: a keyed hash of the platform student id, the same on every run and on
  every engine: lowercase hex sha256 of (salt || student id). The salt (the key) comes
  from the environment variable STUDENT_KEY_SALT. The prod target refuses to build
  without it; any other target falls back to a development salt that says what it is,
  so dev keys never equal prod keys.
-#}
{% macro student_key(student_id_column) -%}
    {{ return(adapter.dispatch('student_key', 'survey_warehouse')(student_id_column)) }}
{%- endmacro %}

{% macro default__student_key(student_id_column) -%}
    sha256({{ student_key_salt() }} || cast({{ student_id_column }} as varchar))
{%- endmacro %}

{% macro snowflake__student_key(student_id_column) -%}
    sha2({{ student_key_salt() }} || cast({{ student_id_column }} as varchar), 256)
{%- endmacro %}

{#- The salt as a quoted SQL string literal. -#}
{% macro student_key_salt() -%}
    {%- set salt = env_var('STUDENT_KEY_SALT', '') -%}
    {%- if not salt -%}
        {%- if target.name == 'prod' and execute -%}
            {{ exceptions.raise_compiler_error(
                "STUDENT_KEY_SALT is not set: the prod target will not build student keys without it. "
                ~ "Set the environment variable STUDENT_KEY_SALT to the production key (from the secret store) and rerun."
            ) }}
        {%- endif -%}
        {%- set salt = 'dev-only-insecure-salt' -%}
    {%- endif -%}
    '{{ salt | replace("'", "''") }}'
{%- endmacro %}
