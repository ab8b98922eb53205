{#- Converts an integer amount of cents to a numeric amount of dollars with two decimals (portable SQL). -#}
{% macro cents_to_dollars(column_name) -%}
    cast(({{ column_name }}) / 100.0 as numeric(16, 2))
{%- endmacro %}
