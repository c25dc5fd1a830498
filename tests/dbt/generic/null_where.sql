{#- Rows where `condition` holds show none of `columns` (e.g. suppressed rows publish no numbers). -#}
{% test null_where(model, columns, condition) %}

select *
from {{ model }}
where ({{ condition }})
    and ({% for column in columns %}{{ column }} is not null{% if not loop.last %} or {% endif %}{% endfor %})

{% endtest %}
