with

orders as (

    select * from {{ ref('stg_orders') }}

),

order_items as (

    select * from {{ ref('order_items') }}

),

-- one row per order
order_items_summary as (

    select
        order_id,
        sum(supply_cost) as order_cost,
        sum(product_price) as order_items_subtotal,
        count(order_item_id) as count_order_items,
        sum(case when is_food_item then 1 else 0 end) as count_food_items,
        sum(case when is_drink_item then 1 else 0 end) as count_drink_items

    from order_items

    group by order_id

),

compute_booleans as (

    select
        orders.order_id,
        orders.location_id,
        orders.customer_id,
        orders.ordered_at,
        orders.subtotal,
        orders.tax_paid,
        orders.order_total,
        cast(coalesce(order_items_summary.order_cost, 0) as numeric(16, 2)) as order_cost,
        cast(coalesce(order_items_summary.order_items_subtotal, 0) as numeric(16, 2)) as order_items_subtotal,
        cast(coalesce(order_items_summary.count_food_items, 0) as {{ dbt.type_bigint() }}) as count_food_items,
        cast(coalesce(order_items_summary.count_drink_items, 0) as {{ dbt.type_bigint() }}) as count_drink_items,
        cast(coalesce(order_items_summary.count_order_items, 0) as {{ dbt.type_bigint() }}) as count_order_items,
        case when coalesce(order_items_summary.count_food_items, 0) > 0 then true else false end as is_food_order,
        case when coalesce(order_items_summary.count_drink_items, 0) > 0 then true else false end as is_drink_order

    from orders

    left join order_items_summary
        on orders.order_id = order_items_summary.order_id

),

customer_order_count as (

    select
        *,
        row_number() over (
            partition by customer_id
            order by ordered_at asc, order_id asc
        ) as customer_order_number

    from compute_booleans

)

select * from customer_order_count
