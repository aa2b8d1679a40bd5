"""How many SQL statements one paid checkout through the HTTP gateway sends, with and
without an Idempotency-Key: counted from the PostgreSQL client spans of the request's trace
(BEGIN and COMMIT are spans too), leaving out what the event consumers do after the outbox
rows were published (they continue the same trace).

The bare checkout (no HTTP, no key) is counted from the statements themselves in
``test_checkout_sql_script``."""

from __future__ import annotations

import uuid

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ecomctl.bootstrap import ShopStack
from tests.shopdata import make_catalogue

MAX_STATEMENTS = 10


def _request_statements(trace: list[ReadableSpan], root: int) -> list[str]:
    """The PostgreSQL spans of the request under the span ``root``, in the order they
    started. The event consumers continue the trace through the relay's PRODUCER spans and
    their own CONSUMER spans (whose ancestors may not all be exported yet): a statement
    counts only if its parents lead up to ``root`` through neither."""
    by_id = {s.context.span_id: s for s in trace}

    def the_requests(span: ReadableSpan) -> bool:
        parent = span.parent
        while parent is not None:
            if parent.span_id == root:
                return True
            ancestor = by_id.get(parent.span_id)
            if ancestor is None or ancestor.kind.name in ("PRODUCER", "CONSUMER"):
                return False
            parent = ancestor.parent
        return False

    db = [s for s in trace if (s.attributes or {}).get("db.system.name") == "postgresql"
          and the_requests(s)]
    return [" ".join(str((s.attributes or {}).get("db.query.text", s.name)).split())
            for s in sorted(db, key=lambda s: s.start_time or 0)]


@pytest.mark.parametrize("with_key", [True, False], ids=["idempotency-key", "no-key"])
async def test_a_paid_checkout_over_http_sends_at_most_ten_statements(
    shop: ShopStack, gateway_url: str, spans: InMemorySpanExporter, with_key: bool
) -> None:
    catalogue = await make_catalogue(shop, 2, stock=10)
    email = f"{catalogue.slug}@example.test"
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        registered = await client.post("/api/users/register", json={
            "email": email, "password": "count-me-123", "full_name": "Counted Shopper"})
        assert registered.status_code == 201, registered.text
        login = await client.post("/api/users/login",
                                  json={"email": email, "password": "count-me-123"})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        for pid in catalogue.ids:
            added = await client.post("/api/cart/items", json={"product_id": pid},
                                      headers=auth)
            assert added.status_code == 201, added.text
        headers = {**auth, "Idempotency-Key": str(uuid.uuid4())} if with_key else auth
        with shop.telemetry.tracer("shopper").span("journey.checkout") as root:
            response = await client.post("/api/checkout", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["outcome"] == "paid"
    assert shop.telemetry.force_flush()

    context = root.get_span_context()
    statements = _request_statements(
        [s for s in spans.get_finished_spans() if s.context.trace_id == context.trace_id],
        context.span_id)
    listing = "\n".join(f"{n:2}. {q[:160]}" for n, q in enumerate(statements, start=1))
    assert 0 < len(statements) <= MAX_STATEMENTS, (
        f"a paid checkout over HTTP sent {len(statements)} statements (at most "
        f"{MAX_STATEMENTS}):\n{listing}")
