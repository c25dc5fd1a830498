{#-
  Counts between layers: the model holds as many rows as `compare_model` (e.g. a mart and
  the staging model of its raw table: nothing lost, nothing duplicated, nothing deleted
  kept). Fails with both counts.
-#}
{% test same_row_count(model, compare_model) %}

with

this_model as (
    select count(*) as model_rows from {{ model }}
),

compared as (
    select count(*) as compared_rows from {{ compare_model }}
)

select
    this_model.model_rows,
    compared.compared_rows
from this_model
cross join compared
where this_model.model_rows <> compared.compared_rows

{% endtest %}
