{#-
  Configuration test (cfg_unmapped_*): the codes in `column_name` that the crosswalks do
  not map (`unmapped_when` is true), with the district sending them and how many rows
  carry each. Applied per field in the models' yml, with severity warn and
  store_failures, so an unmapped code is reported and stored, never fatal, never dropped.
-#}
{% test unmapped_codes(model, column_name, unmapped_when) %}

select
    district_id,
    {{ column_name }} as raw_code,
    count(*) as rows_with_code
from {{ model }}
where {{ column_name }} is not null
    and ({{ unmapped_when }})
group by district_id, {{ column_name }}

{% endtest %}
