"""``ecomctl bench``'s client: cached product pages as fast as the server answers.

The same user class runs against ``ecomctl serve`` and the bare app, so the ratio is the
server's cost alone. ``ECOMCTL_BENCH_PRODUCT_IDS`` is a comma-separated list of ids.

    ECOMCTL_BENCH_PRODUCT_IDS=1,2,3 locust -f scenarios/bench_product.py --headless \\
        -u 32 -r 32 -t 10s --host http://127.0.0.1:8000
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, constant, task

PRODUCT_IDS = [int(i) for i in os.environ.get("ECOMCTL_BENCH_PRODUCT_IDS", "1").split(",")]


class ProductReader(FastHttpUser):
    wait_time = constant(0)

    @task
    def product(self) -> None:
        product_id = random.choice(PRODUCT_IDS)
        self.client.get(f"/api/products/{product_id}", name="/api/products/{id}")
