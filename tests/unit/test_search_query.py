from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ecomctl.adapters.search import INDEX_MAPPINGS, build_search_body, document_source
from ecomctl.domain.search import ProductDocument, SearchQuery
from ecomctl.errors import ValidationFailed


def _filters(body: dict[str, Any]) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = body["query"]["bool"]["filter"]
    return filters


def test_text_is_stripped_and_defaults_apply() -> None:
    q = SearchQuery("  coffee grinder  ")
    assert q.text == "coffee grinder"
    assert (q.category, q.min_price, q.max_price, q.page, q.page_size) == (
        None, None, None, 1, 20,
    )


@pytest.mark.parametrize("text", ["", "   ", "x" * 201])
def test_text_length_is_bounded(text: str) -> None:
    with pytest.raises(ValidationFailed):
        SearchQuery(text)


def test_text_of_200_characters_after_strip_is_accepted() -> None:
    assert len(SearchQuery(" " + "x" * 200 + " ").text) == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"page": 0},
        {"page": -1},
        {"page_size": 0},
        {"page_size": 101},
        {"page": True},
        {"page": 101, "page_size": 100},  # beyond Elasticsearch's 10,000-hit window
        {"category": "  "},
        {"min_price": Decimal("-1")},
        {"max_price": 9.99},  # floats cannot hold money
    ],
)
def test_invalid_queries_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        SearchQuery("shoes", **kwargs)


def test_an_inverted_price_range_is_refused() -> None:
    with pytest.raises(ValidationFailed, match=r"min_price 10\.00 is above max_price 9\.99"):
        SearchQuery("shoes", min_price=Decimal("10.00"), max_price=Decimal("9.99"))


def test_equal_bounds_and_edge_pages_are_accepted() -> None:
    q = SearchQuery(
        "shoes", min_price=Decimal("5"), max_price=Decimal("5.00"), page=100, page_size=100
    )
    assert q.min_price == q.max_price == Decimal("5.00")


def test_body_matches_weighted_fields_with_a_lower_weight_fuzzy_variant() -> None:
    body = build_search_body(SearchQuery("trail shoes"))
    must = body["query"]["bool"]["must"]
    assert len(must) == 1
    should = must[0]["bool"]["should"]
    assert must[0]["bool"]["minimum_should_match"] == 1
    exact, fuzzy = (clause["multi_match"] for clause in should)
    for clause in (exact, fuzzy):
        assert clause["query"] == "trail shoes"
        assert clause["fields"] == ["name^3", "description", "category_name"]
        assert clause["type"] == "best_fields"
        assert clause["operator"] == "or"
    assert "fuzziness" not in exact
    assert fuzzy["fuzziness"] == "AUTO"
    assert fuzzy["boost"] < 1
    assert body["query"]["bool"]["should"] == [
        {"match_phrase": {"name": {"query": "trail shoes", "boost": 2.0}}}
    ]


def test_body_without_filters_only_keeps_active_products() -> None:
    body = build_search_body(SearchQuery("shoes"))
    assert _filters(body) == [{"term": {"active": True}}]


def test_body_filters_category_and_inclusive_price_range_in_cents() -> None:
    q = SearchQuery(
        "shoes", category="sports", min_price=Decimal("10.5"), max_price=Decimal("99.99")
    )
    assert _filters(build_search_body(q)) == [
        {"term": {"active": True}},
        {"term": {"category_slug": "sports"}},
        {"range": {"price_cents": {"gte": 1050, "lte": 9999}}},
    ]


def test_body_with_one_price_bound() -> None:
    q = SearchQuery("shoes", max_price=Decimal("0.01"))
    assert _filters(build_search_body(q))[-1] == {"range": {"price_cents": {"lte": 1}}}


def test_body_paginates_counts_exactly_and_orders_stably() -> None:
    body = build_search_body(SearchQuery("shoes", page=3, page_size=25))
    assert body["from"] == 50
    assert body["size"] == 25
    assert body["track_total_hits"] is True
    assert body["sort"] == [{"_score": {"order": "desc"}}, {"product_id": {"order": "asc"}}]
    assert set(body["_source"]) == {"product_id", "name", "category_slug", "price"}


def _doc(**overrides: Any) -> ProductDocument:
    fields: dict[str, Any] = {
        "product_id": 7,
        "sku": "SKU-7",
        "name": "Trail shoes",
        "description": "Light running shoes",
        "category_slug": "sports",
        "category_name": "Sports",
        "price": Decimal("89.9"),
        "currency": "EUR",
        "active": True,
    }
    fields.update(overrides)
    return ProductDocument(**fields)


def test_document_source_keeps_money_exact_and_matches_the_mapping() -> None:
    source = document_source(_doc())
    assert source["price"] == "89.90"
    assert source["price_cents"] == 8990
    assert set(source) == set(INDEX_MAPPINGS["properties"])
    assert INDEX_MAPPINGS["properties"]["price_cents"]["type"] == "long"
    assert INDEX_MAPPINGS["properties"]["price"]["type"] == "keyword"


@pytest.mark.parametrize(
    "overrides", [{"product_id": 0}, {"product_id": True}, {"price": 1.5}, {"price": "-1"}]
)
def test_invalid_documents_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationFailed):
        _doc(**overrides)
