{#-
  A query tag per node on Snowflake: while dbt builds a model, seed or snapshot, its
  session's query tag is a small JSON object naming the project, the node and the run, so
  QUERY_HISTORY and warehouse cost can be grouped by model:
    {"app": "survey_warehouse", "node": "model.fct_question_responses", "target": "prod",
     "invocation_id": "…"}
  A `query_tag` config replaces it. Data tests keep the session's tag (the profile's
  `query_tag`) unless they set one: tagging each of hundreds of tiny queries would cost
  two more statements apiece. Afterwards the session's own tag is restored. Otherwise these are dbt-snowflake's macros, which act only when a node sets
  `query_tag` itself.
-#}
{% macro node_query_tag() -%}
    {%- if config.get('query_tag') -%}
        {{ return(config.get('query_tag')) }}
    {%- elif model.resource_type == 'test' -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(tojson({
        'app': project_name,
        'node': model.resource_type ~ '.' ~ model.name,
        'target': target.name,
        'invocation_id': invocation_id,
    })) }}
{%- endmacro %}

{% macro snowflake__set_query_tag() -%}
    {%- set new_query_tag = node_query_tag() -%}
    {%- if new_query_tag -%}
        {#- The session's tag is the profile's query_tag: no round trip to look it up. -#}
        {%- set original_query_tag = target.get('query_tag') if target.get('query_tag') is not none
            else get_current_query_tag() -%}
        {{ log("Setting query_tag to '" ~ new_query_tag ~ "'. Will reset to '" ~ original_query_tag ~ "' after materialization.") }}
        {%- do run_query("alter session set query_tag = '" ~ (new_query_tag | replace("'", "''")) ~ "'") -%}
        {{ return(original_query_tag) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{% macro snowflake__unset_query_tag(original_query_tag) -%}
    {%- if node_query_tag() -%}
        {%- if original_query_tag -%}
            {{ log("Resetting query_tag to '" ~ original_query_tag ~ "'.") }}
            {%- do run_query("alter session set query_tag = '" ~ (original_query_tag | replace("'", "''")) ~ "'") -%}
        {%- else -%}
            {{ log("No original query_tag, unsetting parameter.") }}
            {%- do run_query("alter session unset query_tag") -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
