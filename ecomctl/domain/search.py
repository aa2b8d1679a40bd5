"""Product search as the business sees it: the document a product becomes, a validated query
and one hit. The engine (Elasticsearch, ``adapters/search``) maps these to its own shapes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ecomctl.domain.models import Product
from ecomctl.domain.money import money
from ecomctl.errors import ValidationFailed

MAX_QUERY_CHARS = 200
MAX_PAGE_SIZE = 100
MAX_CATEGORY_CHARS = 100
# Elasticsearch's default index.max_result_window: deeper pages are refused up front, with a
# clear message, rather than by the engine.
MAX_RESULT_WINDOW = 10_000


@dataclass(frozen=True)
class ProductDocument:
    """What the search index knows about one product."""

    product_id: int
    sku: str
    name: str
    description: str
    category_slug: str
    category_name: str
    price: Decimal
    currency: str
    active: bool

    def __post_init__(self) -> None:
        if not _is_int(self.product_id):
            raise ValidationFailed("product_id must be an integer")
        if self.product_id < 1:
            raise ValidationFailed("product_id must be positive")
        object.__setattr__(self, "price", money(self.price))

    @classmethod
    def from_product(cls, product: Product, category_name: str) -> ProductDocument:
        return cls(
            product_id=product.id,
            sku=product.sku,
            name=product.name,
            description=product.description,
            category_slug=product.category_slug,
            category_name=category_name,
            price=product.price,
            currency=product.currency,
            active=product.active,
        )


@dataclass(frozen=True)
class SearchHit:
    product_id: int
    name: str
    category_slug: str
    price: Decimal
    score: float


@dataclass(frozen=True)
class SearchQuery:
    """A validated search request; ``text`` is stored stripped, bounds as cents-exact money."""

    text: str
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    page: int = 1
    page_size: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise ValidationFailed("search text must be a string")
        text = self.text.strip()
        if not 1 <= len(text) <= MAX_QUERY_CHARS:
            raise ValidationFailed(f"search text must be 1 to {MAX_QUERY_CHARS} characters")
        object.__setattr__(self, "text", text)
        if self.category is not None:
            category = self.category.strip()
            if not 1 <= len(category) <= MAX_CATEGORY_CHARS:
                raise ValidationFailed(
                    f"category must be 1 to {MAX_CATEGORY_CHARS} characters when given"
                )
            object.__setattr__(self, "category", category)
        if self.min_price is not None:
            object.__setattr__(self, "min_price", money(self.min_price))
        if self.max_price is not None:
            object.__setattr__(self, "max_price", money(self.max_price))
        # An empty range is a client's mistake (swapped bounds), said as such rather than
        # answered with no hits; the document says it, since no schema of two parameters can.
        if (self.min_price is not None and self.max_price is not None
                and self.min_price > self.max_price):
            raise ValidationFailed(f"min_price {self.min_price} is above max_price "
                                   f"{self.max_price}")
        if not _is_int(self.page) or self.page < 1:
            raise ValidationFailed("page must be an integer >= 1")
        if not _is_int(self.page_size) or not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ValidationFailed(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
        if self.page * self.page_size > MAX_RESULT_WINDOW:
            raise ValidationFailed(f"cannot page beyond the first {MAX_RESULT_WINDOW} results")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
