with

order_items as (

    select * from {{ ref('stg_order_items') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

products as (

    select * from {{ ref('stg_products') }}

),

supplies as (

    select * from {{ ref('stg_supplies') }}

),

-- one row per product: supplies has several rows per product, aggregate before joining
product_supply_costs as (

    select
        product_id,
        sum(supply_cost) as supply_cost

    from supplies

    group by product_id

),

joined as (

    select
        order_items.order_item_id,
        order_items.order_id,
        order_items.product_id,
        orders.ordered_at,
        products.product_name,
        products.product_price,
        products.is_food_item,
        products.is_drink_item,
        cast(coalesce(product_supply_costs.supply_cost, 0) as numeric(16, 2)) as supply_cost

    from order_items

    left join orders
        on order_items.order_id = orders.order_id

    left join products
        on order_items.product_id = products.product_id

    left join product_supply_costs
        on order_items.product_id = product_supply_costs.product_id

)

select * from joined
