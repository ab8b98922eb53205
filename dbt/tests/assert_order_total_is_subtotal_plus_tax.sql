-- Every order's total must equal its subtotal plus the tax paid. Returns the orders where it does not.
select order_id, subtotal, tax_paid, order_total
from {{ ref('orders') }}
where order_total <> subtotal + tax_paid
