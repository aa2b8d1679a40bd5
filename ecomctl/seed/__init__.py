"""``ecomctl seed``: realistic, reproducible shop data, bulk-loaded fast.

Kept light on purpose: simulations and Locust scenarios import ``load_credentials`` from
here, so nothing heavy (Faker, asyncpg, Elasticsearch) is imported at package level.
"""

from __future__ import annotations

from ecomctl.seed.credentials import Credentials, Shopper, load_credentials
from ecomctl.seed.plan import PRESETS, SeedPlan, make_plan

__all__ = ["PRESETS", "Credentials", "SeedPlan", "Shopper", "load_credentials", "make_plan"]
