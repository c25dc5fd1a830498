{#- A standard grade level as a number for ordering spans: PK -1, KG 0, 01..12 1..12, else null. -#}
{% macro grade_number(grade_level) -%}
    case
        when {{ grade_level }} = 'PK' then -1
        when {{ grade_level }} = 'KG' then 0
        when {{ grade_level }} in ('01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12')
            then cast({{ grade_level }} as integer)
    end
{%- endmacro %}
