{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='fail',
        tmp_relation_type=incremental_tmp_relation_type()
    )
}}
{#-
  The build log of the models partitioned by school year (macros/survey/
  school_year_partitions.sql) and of those maintained by response (macros/survey/
  response_deltas.sql), written by their hooks, never by this query: a row when a
  model's build starts (is_built false: the ingest-ledger high-water it builds through)
  and a row when its rows are in (is_built true). A model's last is_built row is the
  high-water its next build rebuilds the changed school years (or responses) since. A
  build from scratch adds a started row without a high-water; int_question_responses_scored
  logs here for its tests; `<model>#tested` rows (on-run-end) say through where a model's
  tests that read only rebuilt responses last passed. Built empty once, then only
  appended to.
-#}
with

final as (
    select
        cast(null as varchar) as model_name,
        cast(null as varchar) as invocation_id,
        cast(null as timestamp) as ingested_through,
        cast(null as boolean) as is_built
    from (select 1 as placeholder) as one_row
    where 1 = 0
)

select * from final
