-- The marts must not fan out or drop rows: one row per raw order, item and customer. Returns the mismatches.
with

counts as (

    select 'orders' as model_name,
        (select count(*) from {{ ref('orders') }}) as model_rows,
        (select count(*) from {{ source('jaffle_shop', 'orders') }}) as raw_rows

    union all

    select 'order_items' as model_name,
        (select count(*) from {{ ref('order_items') }}) as model_rows,
        (select count(*) from {{ source('jaffle_shop', 'items') }}) as raw_rows

    union all

    select 'customers' as model_name,
        (select count(*) from {{ ref('customers') }}) as model_rows,
        (select count(*) from {{ source('jaffle_shop', 'customers') }}) as raw_rows

)

select * from counts where model_rows <> raw_rows
