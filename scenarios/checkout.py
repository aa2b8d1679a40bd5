"""Checkouts only: one to three products into the cart, then ``POST /api/checkout``
(a 402, payment declined or failed, is counted as a business outcome, not a failure).

    locust -f scenarios/checkout.py --host http://127.0.0.1:8000 -u 20 -r 10 -t 60s

Shapes and constant arrival rate work as in ``mixed_shop.py``.
"""

from __future__ import annotations

import shapes
from shop import ShopUser, journeys


class CheckoutShopper(ShopUser):
    tasks = journeys(checkout=1)


LoadShape = shapes.shape_from_env()
