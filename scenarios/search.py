"""Full-text search only: a query in Elasticsearch, then the first hit's product page.

    locust -f scenarios/search.py --host http://127.0.0.1:8000 -u 20 -r 10 -t 60s

Shapes and constant arrival rate work as in ``mixed_shop.py``.
"""

from __future__ import annotations

import shapes
from shop import ShopUser, journeys


class SearchShopper(ShopUser):
    tasks = journeys(search=1)


LoadShape = shapes.shape_from_env()
