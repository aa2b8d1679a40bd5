"""Double-click payments only: an order placed from the cart, then paid twice at once. One
payment goes through; the other is refused (409, counted as a business outcome), as
``ecomctl checkout simulate --weights pay-order=1`` checks in process.

    locust -f scenarios/pay_order.py --host http://127.0.0.1:8000 -u 10 -r 10 -t 60s

Shapes and constant arrival rate work as in ``mixed_shop.py``.
"""

from __future__ import annotations

import shapes
from shop import ShopUser, journeys


class PayOrderShopper(ShopUser):
    tasks = journeys(**{"pay-order": 1})


LoadShape = shapes.shape_from_env()
