with

customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

-- one row per customer with at least one order
customer_orders_summary as (

    select
        customer_id,
        count(order_id) as count_lifetime_orders,
        min(ordered_at) as first_ordered_at,
        max(ordered_at) as last_ordered_at,
        sum(subtotal) as lifetime_spend_pretax,
        sum(tax_paid) as lifetime_tax_paid,
        sum(order_total) as lifetime_spend

    from orders

    group by customer_id

),

joined as (

    select
        customers.customer_id,
        customers.customer_name,
        cast(coalesce(customer_orders_summary.count_lifetime_orders, 0) as {{ dbt.type_bigint() }}) as count_lifetime_orders,
        customer_orders_summary.first_ordered_at,
        customer_orders_summary.last_ordered_at,
        cast(coalesce(customer_orders_summary.lifetime_spend_pretax, 0) as numeric(16, 2)) as lifetime_spend_pretax,
        cast(coalesce(customer_orders_summary.lifetime_tax_paid, 0) as numeric(16, 2)) as lifetime_tax_paid,
        cast(coalesce(customer_orders_summary.lifetime_spend, 0) as numeric(16, 2)) as lifetime_spend,
        case
            when coalesce(customer_orders_summary.count_lifetime_orders, 0) > 1 then 'returning'
            else 'new'
        end as customer_type

    from customers

    left join customer_orders_summary
        on customers.customer_id = customer_orders_summary.customer_id

)

select * from joined
