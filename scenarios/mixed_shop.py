"""The mixed shop: every journey, weighted like the OpenTelemetry Demo's load generator.

    locust -f scenarios/mixed_shop.py --host http://127.0.0.1:8000 -u 50 -r 10 -t 60s

``ECOMCTL_LOAD_SHAPE=ramp|step|spike|soak`` runs it under a load shape (``shapes.py``);
``ECOMCTL_LOAD_PACING_S=0.5`` at a constant arrival rate of one journey per user every 0.5 s,
latency measured from each journey's intended start. ``ecomctl load run`` sets these for its
profiles.
"""

from __future__ import annotations

import shapes
from shop import MIXED_WEIGHTS, ShopUser, journeys


class MixedShopper(ShopUser):
    tasks = journeys(**MIXED_WEIGHTS)


LoadShape = shapes.shape_from_env()  # a class only when ECOMCTL_LOAD_SHAPE names one
