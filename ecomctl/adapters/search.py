"""Product search on Elasticsearch, through the official async client.

Readers and writers go through an alias (default ``ecomctl-products``) that points at a
versioned concrete index (``<alias>-v1``), so a later reindex can build ``-v2`` and swap the
alias atomically. Money is indexed twice: ``price`` as a keyword string for display (exact, no
float) and ``price_cents`` as a long for range filters.

Only features of Elasticsearch's core modules are used (standard analyzer, multi_match, bool,
term, range, bulk), so this also runs on the integration-test distribution of the local stack.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    ConnectionError,
    ConnectionTimeout,
    NotFoundError,
    TransportError,
)
from elasticsearch.helpers import BulkIndexError, async_bulk

from ecomctl.domain.models import Page
from ecomctl.domain.money import money
from ecomctl.domain.search import ProductDocument, SearchHit, SearchQuery
from ecomctl.errors import BackendUnavailable, InfraError, RequestRejected

BACKEND = "elasticsearch"
DEFAULT_ALIAS = "ecomctl-products"
INDEX_VERSION = 1
BULK_CHUNK_SIZE = 1_000
SEARCH_FIELDS = ("name^3", "description", "category_name")

def unreachable_client() -> AsyncElasticsearch:
    """A client of a port nothing listens on, failing at once: the ``search-down`` fault."""
    return AsyncElasticsearch("http://127.0.0.1:1", request_timeout=1, max_retries=0)


INDEX_SETTINGS: dict[str, Any] = {
    # A catalogue fits one shard; one shard also keeps BM25 statistics (and so page order)
    # identical from one request to the next. The local stack is a single node: no replicas.
    "number_of_shards": 1,
    "number_of_replicas": 0,
}
INDEX_MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",  # a field we did not map is a bug in this module, not data
    "properties": {
        "product_id": {"type": "long"},
        "sku": {"type": "keyword"},
        "name": {
            "type": "text",
            "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
        },
        "description": {"type": "text"},
        "category_slug": {"type": "keyword"},
        "category_name": {"type": "text"},
        "price": {"type": "keyword", "index": False},
        "price_cents": {"type": "long"},
        "currency": {"type": "keyword"},
        "active": {"type": "boolean"},
    },
}
_SOURCE_FIELDS = ["product_id", "name", "category_slug", "price"]


def document_source(doc: ProductDocument) -> dict[str, Any]:
    """The indexed JSON of ``doc`` (the fields of INDEX_MAPPINGS): money as an exact string
    for display and as cents for range filters."""
    return {
        "product_id": doc.product_id,
        "sku": doc.sku,
        "name": doc.name,
        "description": doc.description,
        "category_slug": doc.category_slug,
        "category_name": doc.category_name,
        "price": str(doc.price),
        "price_cents": _cents(doc.price),
        "currency": doc.currency,
        "active": doc.active,
    }


def build_search_body(query: SearchQuery) -> dict[str, Any]:
    """The request body of one search: relevance first, then product_id for stable pages."""
    exact = {
        "multi_match": {
            "query": query.text,
            "fields": list(SEARCH_FIELDS),
            "type": "best_fields",
            "operator": "or",
        }
    }
    # Typo tolerance at a lower weight: an exact term scores in both clauses, so a typo can
    # only ever rank below the product whose words were spelled right.
    fuzzy = {
        "multi_match": {
            "query": query.text,
            "fields": list(SEARCH_FIELDS),
            "type": "best_fields",
            "operator": "or",
            "fuzziness": "AUTO",
            "prefix_length": 1,
            "boost": 0.5,
        }
    }
    # Scoring only: lifts the product whose name is the whole query, in order.
    phrase = {"match_phrase": {"name": {"query": query.text, "boost": 2.0}}}
    filters: list[dict[str, Any]] = [{"term": {"active": True}}]
    if query.category is not None:
        filters.append({"term": {"category_slug": query.category}})
    price_range: dict[str, int] = {}
    if query.min_price is not None:
        price_range["gte"] = _cents(query.min_price)
    if query.max_price is not None:
        price_range["lte"] = _cents(query.max_price)
    if price_range:
        filters.append({"range": {"price_cents": price_range}})
    return {
        "query": {
            "bool": {
                "must": [{"bool": {"should": [exact, fuzzy], "minimum_should_match": 1}}],
                "should": [phrase],
                "filter": filters,
            }
        },
        "from": (query.page - 1) * query.page_size,
        "size": query.page_size,
        "sort": [{"_score": {"order": "desc"}}, {"product_id": {"order": "asc"}}],
        "track_total_hits": True,
        "_source": list(_SOURCE_FIELDS),
    }


class ProductSearchIndex:
    """The product index behind an alias. The client is injected so that the composition root
    owns its configuration (timeouts, retries); it traces itself natively."""

    def __init__(self, client: AsyncElasticsearch, alias: str = DEFAULT_ALIAS) -> None:
        self._client = client
        self.alias = alias
        self.index_name = f"{alias}-v{INDEX_VERSION}"

    async def recreate(self) -> None:
        """Start over empty: delete whatever the alias names (its concrete index, or an index
        called like the alias that a stray write auto-created), then ``ensure_index``."""
        with _translated("recreate index"):
            found = await self._client.indices.get(index=self.alias, ignore_unavailable=True)
            if found:
                await self._client.indices.delete(index=",".join(sorted(found)))
        await self.ensure_index()

    def use_client(self, client: AsyncElasticsearch) -> AsyncElasticsearch:
        """Switch the client (fault injection: an unreachable cluster); returns the old one."""
        previous, self._client = self._client, client
        return previous

    @classmethod
    def from_url(
        cls, url: str, alias: str = DEFAULT_ALIAS, *, request_timeout: float = 10.0
    ) -> ProductSearchIndex:
        client = AsyncElasticsearch(url, request_timeout=request_timeout, retry_on_timeout=False)
        return cls(client, alias)

    async def ensure_index(self) -> None:
        """Create the concrete index and its alias unless the alias exists. Safe to call
        concurrently (from several processes too): losing the creation race is success."""
        with _translated("ensure_index"):
            if await self._client.indices.exists_alias(name=self.alias):
                return
            try:
                await self._client.indices.create(
                    index=self.index_name,
                    settings=INDEX_SETTINGS,
                    mappings=INDEX_MAPPINGS,
                    aliases={self.alias: {}},
                )
                return
            except ApiError as exc:
                if _error_type(exc) != "resource_already_exists_exception":
                    raise
            # Someone else created the index: its creator may not have seen the primary shard
            # start yet, and the alias may have been removed since; make both true.
            await self._client.cluster.health(
                index=self.index_name, wait_for_status="yellow", timeout="30s"
            )
            await self._client.indices.put_alias(index=self.index_name, name=self.alias)

    async def bulk_index(self, docs: Iterable[ProductDocument], *, refresh: bool = False) -> int:
        """Index (create or replace) ``docs`` in chunks; return how many were indexed."""
        actions = (
            {
                "_op_type": "index",
                "_index": self.alias,
                "_id": str(doc.product_id),
                "_source": document_source(doc),
            }
            for doc in docs
        )
        with _translated("bulk index"):
            try:
                indexed, _ = await async_bulk(
                    self._client, actions, chunk_size=BULK_CHUNK_SIZE, raise_on_error=True
                )
            except BulkIndexError as exc:
                raise _bulk_failure(exc) from exc
            if refresh:
                await self._client.indices.refresh(index=self.alias)
        return indexed

    async def upsert(self, doc: ProductDocument, *, refresh: bool = False) -> None:
        with _translated("index"):
            await self._client.index(
                index=self.alias,
                id=str(doc.product_id),
                document=document_source(doc),
                refresh=refresh,
            )

    async def delete(self, product_id: int, *, refresh: bool = False) -> None:
        """Remove a product; a product that is not indexed is already in the wanted state."""
        with _translated("delete"):
            try:
                await self._client.delete(index=self.alias, id=str(product_id), refresh=refresh)
            except NotFoundError as exc:
                if _error_type(exc) is not None:  # e.g. index_not_found: a setup bug
                    raise
                # no error body: a plain "result": "not_found", which is fine

    async def refresh(self) -> None:
        with _translated("refresh"):
            await self._client.indices.refresh(index=self.alias)

    async def search(self, query: SearchQuery) -> Page[SearchHit]:
        with _translated("search"):
            response = await self._client.search(index=self.alias, body=build_search_body(query))
        hits = response["hits"]
        return Page(
            items=[_hit(raw) for raw in hits["hits"]],
            page=query.page,
            page_size=query.page_size,
            total=int(hits["total"]["value"]),
        )

    async def count(self) -> int:
        """Every indexed product, active or not."""
        with _translated("count"):
            response = await self._client.count(index=self.alias)
        return int(response["count"])

    async def close(self) -> None:
        await self._client.close()


def _hit(raw: Mapping[str, Any]) -> SearchHit:
    source = raw["_source"]
    return SearchHit(
        product_id=int(source["product_id"]),
        name=source["name"],
        category_slug=source["category_slug"],
        price=Decimal(source["price"]),
        score=float(raw["_score"] or 0.0),
    )


def _cents(amount: Decimal) -> int:
    return int(money(amount) * 100)


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Unreachable, overloaded or timed out (408, 429, 5xx) → BackendUnavailable, worth a
    retry; a version conflict (409) → InfraError, also retryable; any other 4xx is a request
    Elasticsearch refused (a mapping or parse rejection) → RequestRejected, final, carrying
    Elasticsearch's own reason."""
    try:
        yield
    except (ConnectionError, ConnectionTimeout) as exc:
        raise BackendUnavailable(BACKEND, f"{operation}: {exc}") from exc
    except ApiError as exc:
        status = exc.meta.status
        if status in (408, 429) or status >= 500:
            raise BackendUnavailable(BACKEND, f"{operation}: HTTP {status} {_reason(exc)}") from exc
        rejected = InfraError if status == 409 else RequestRejected
        raise rejected(
            f"{BACKEND} rejected {operation} (HTTP {status}): {_reason(exc)}"
        ) from exc
    except TransportError as exc:  # serialization and other client-side transport faults
        raise InfraError(f"{BACKEND} {operation}: {exc}") from exc


def _error_body(exc: ApiError) -> dict[str, Any] | None:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error: dict[str, Any] = body["error"]
        return error
    return None


def _error_type(exc: ApiError) -> str | None:
    error = _error_body(exc)
    return None if error is None else str(error.get("type"))


def _reason(exc: ApiError) -> str:
    error = _error_body(exc)
    if error is None:
        return str(exc.message)
    # "search_phase_execution_exception: all shards failed" says little: the root cause says why.
    causes = error.get("root_cause") or [error]
    cause = causes[0] if isinstance(causes[0], dict) else error
    return f"{cause.get('type')}: {cause.get('reason')}"


def _bulk_failure(exc: BulkIndexError) -> InfraError:
    """Items the node was too busy for are an outage; items it refused are our bug."""
    statuses: list[int] = []
    first = ""
    for item in exc.errors:
        # each item is {"index": {"_id": ..., "status": ..., "error": {...}}}
        result: dict[str, Any] = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        statuses.append(int(result.get("status", 0)))
        if not first:
            error = result.get("error", {})
            reason = (
                f"{error.get('type')}: {error.get('reason')}"
                if isinstance(error, dict)
                else str(error)
            )
            first = f"document {result.get('_id')}: {reason}"
    detail = f"{len(exc.errors)} document(s) failed; first: {first}"
    if statuses and all(status in (408, 429) or status >= 500 for status in statuses):
        return BackendUnavailable(BACKEND, f"bulk index: {detail}")
    if statuses and all(400 <= status < 500 and status not in (408, 409, 429)
                        for status in statuses):
        return RequestRejected(f"{BACKEND} rejected bulk index: {detail}")
    return InfraError(f"{BACKEND} rejected bulk index: {detail}")
