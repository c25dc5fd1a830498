{#- `column_name` is at least `other` (another column of the row) wherever both have a value. -#}
{% test not_below(model, column_name, other) %}

select
    {{ column_name }},
    {{ other }}
from {{ model }}
where {{ column_name }} < {{ other }}

{% endtest %}
