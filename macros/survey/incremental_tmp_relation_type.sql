{#-
  tmp_relation_type for incremental models: Snowflake builds each batch in a transient
  table (what the Snowflake emulator needs for delete+insert); other engines keep their
  adapter's default.
-#}
{% macro incremental_tmp_relation_type() -%}
    {{ return(adapter.dispatch('incremental_tmp_relation_type', 'survey_warehouse')()) }}
{%- endmacro %}

{% macro default__incremental_tmp_relation_type() -%}
    {{ return(none) }}
{%- endmacro %}

{% macro snowflake__incremental_tmp_relation_type() -%}
    {{ return('transient') }}
{%- endmacro %}
