{#-
  True when dbt builds against the Snowflake emulator CI uses (fakesnow, target
  `ci_snowflake` in profiles.yml). The few macros that work around what the emulator
  cannot run check it, so every other target, production first, runs dbt-snowflake's own
  SQL.
-#}
{% macro on_snowflake_emulator() -%}
    {{ return(target.type == 'snowflake' and target.name == 'ci_snowflake') }}
{%- endmacro %}
