"""Catalogue browsing only: a category page, then one to three of its products (the
product cache's home ground).

    locust -f scenarios/browse.py --host http://127.0.0.1:8000 -u 20 -r 10 -t 60s

Shapes and constant arrival rate work as in ``mixed_shop.py``.
"""

from __future__ import annotations

import shapes
from shop import ShopUser, journeys


class BrowseShopper(ShopUser):
    tasks = journeys(browse=1)


LoadShape = shapes.shape_from_env()
