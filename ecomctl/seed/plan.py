"""What to seed: a scale preset, explicit counts over it, the seed and the Faker locale."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ecomctl.errors import ConfigError
from ecomctl.seed.vocabulary import MAX_CATEGORIES

DEFAULT_SEED = 42
DEFAULT_LOCALE = "en_US"
# Upper bounds that keep memory bounded (per-product arrays, the credentials file) and model
# numbers unique (see generate.MODEL_SPACE).
MAX_USERS = 1_000_000
MAX_PRODUCTS = 2_000_000
MAX_ORDERS = 10_000_000
_LOCALE_SHAPE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


@dataclass(frozen=True)
class SeedPlan:
    users: int
    categories: int
    products: int
    orders: int
    seed: int = DEFAULT_SEED
    locale: str = DEFAULT_LOCALE

    def counts(self) -> dict[str, int]:
        return {"users": self.users, "categories": self.categories,
                "products": self.products, "orders": self.orders}


# On a 2-core runner (load + search index): small ~1 s, medium ~5 s, large ~45 s.
PRESETS: dict[str, SeedPlan] = {
    "small": SeedPlan(users=200, categories=20, products=1_000, orders=1_000),
    "medium": SeedPlan(users=5_000, categories=50, products=20_000, orders=50_000),
    "large": SeedPlan(users=50_000, categories=100, products=200_000, orders=500_000),
}


def make_plan(
    scale: str = "small",
    *,
    users: int | None = None,
    categories: int | None = None,
    products: int | None = None,
    orders: int | None = None,
    seed: int = DEFAULT_SEED,
    locale: str = DEFAULT_LOCALE,
) -> SeedPlan:
    """The preset ``scale`` with the given counts overriding it; ConfigError when invalid."""
    preset = PRESETS.get(scale)
    if preset is None:
        raise ConfigError(f"unknown scale {scale!r}: expected one of {', '.join(PRESETS)}")
    overrides = {
        name: value
        for name, value in (("users", users), ("categories", categories),
                            ("products", products), ("orders", orders))
        if value is not None
    }
    plan = replace(preset, seed=seed, locale=locale, **overrides)
    validate(plan)
    return plan


def validate(plan: SeedPlan) -> None:
    _count("users", plan.users, 1, MAX_USERS)
    _count("categories", plan.categories, 1, MAX_CATEGORIES)
    _count("products", plan.products, 1, MAX_PRODUCTS)
    _count("orders", plan.orders, 0, MAX_ORDERS)
    if plan.products < plan.categories:
        raise ConfigError(
            f"products ({plan.products}) must be at least categories ({plan.categories}): "
            "every category gets at least one product"
        )
    if not _is_int(plan.seed) or plan.seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, not {plan.seed!r}")
    _check_locale(plan.locale)


def _count(name: str, value: int, low: int, high: int) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ConfigError(f"{name} must be an integer from {low:,} to {high:,}, not {value!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_locale(locale: str) -> None:
    if not isinstance(locale, str) or not _LOCALE_SHAPE.fullmatch(locale):
        raise ConfigError(f"locale {locale!r} is not shaped like en_US")
    from faker.config import AVAILABLE_LOCALES  # imported here: Faker is slow to import

    if locale not in AVAILABLE_LOCALES:
        raise ConfigError(f"Faker has no locale {locale!r} (e.g. en_US, de_DE, fr_FR, ja_JP)")
