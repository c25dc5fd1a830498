{#- An ISO 8601 UTC string ("2024-09-03T14:22:05.123Z") as a timestamp without zone, or null. -#}
{% macro parse_utc_timestamp(expression) -%}
    {{ return(adapter.dispatch('parse_utc_timestamp', 'survey_warehouse')(expression)) }}
{%- endmacro %}

{% macro default__parse_utc_timestamp(expression) -%}
    cast(try_cast({{ expression }} as timestamptz) at time zone 'UTC' as timestamp)
{%- endmacro %}

{#- try_cast rather than try_to_timestamp_tz: same result on Snowflake, and the emulator CI
    builds on (fakesnow) has no try_to_timestamp_tz over a column. -#}
{% macro snowflake__parse_utc_timestamp(expression) -%}
    convert_timezone('UTC', try_cast({{ expression }} as timestamp_tz))::timestamp_ntz
{%- endmacro %}
