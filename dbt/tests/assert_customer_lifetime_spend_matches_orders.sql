-- A customer's lifetime spend must equal the sum of their orders' totals. Returns the mismatches.
with

order_totals as (

    select customer_id, sum(order_total) as sum_order_total
    from {{ ref('orders') }}
    group by customer_id

)

select customers.customer_id, customers.lifetime_spend, order_totals.sum_order_total
from {{ ref('customers') }} as customers
left join order_totals
    on customers.customer_id = order_totals.customer_id
where customers.lifetime_spend <> coalesce(order_totals.sum_order_total, 0)
