"""The HTTP API as a client sees it, over TCP, on the real stack."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from ecomctl.bootstrap import ShopStack
from tests.shopdata import Catalogue, make_catalogue


@pytest.fixture
async def client(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as http:
        yield http


async def _login(client: httpx.AsyncClient, email: str | None = None) -> dict[str, str]:
    email = email or f"h-{uuid.uuid4().hex[:12]}@example.test"
    created = await client.post(
        "/api/users/register",
        json={"email": email, "password": "s3cret-pass", "full_name": "HTTP Shopper"},
    )
    assert created.status_code == 201, created.text
    login = await client.post("/api/users/login", json={"email": email, "password": "s3cret-pass"})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['token']}"}


async def test_shopper_journey_register_to_shipment(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    word = f"zq{uuid.uuid4().hex[:8]}"
    catalogue: Catalogue = await make_catalogue(shop, 3, stock=5, index=True, word=word)
    auth = await _login(client)

    found = await client.get("/api/search", params={"q": f"{word} item 1"})
    assert found.status_code == 200, found.text
    hits = found.json()["items"]
    assert hits and hits[0]["product_id"] == catalogue.ids[1]
    assert hits[0]["price"] == str(catalogue.products[1].price)  # a decimal string

    product = await client.get(f"/api/products/{catalogue.ids[1]}")
    assert product.json()["price"] == str(catalogue.products[1].price)
    listed = await client.get("/api/products", params={"category": catalogue.slug})
    assert [p["id"] for p in listed.json()["items"]] == catalogue.ids

    added = await client.post(
        "/api/cart/items", json={"product_id": catalogue.ids[1], "quantity": 2}, headers=auth
    )
    assert added.status_code == 201
    assert added.json() == {"lines": [{"product_id": catalogue.ids[1], "quantity": 2}]}
    changed = await client.patch(
        f"/api/cart/items/{catalogue.ids[1]}", json={"quantity": 3}, headers=auth
    )
    assert changed.json()["lines"][0]["quantity"] == 3

    paid = await client.post("/api/checkout", headers=auth)
    assert paid.status_code == 200, paid.text
    body = paid.json()
    assert body["outcome"] == "paid" and body["payment_status"] == "captured"
    assert body["total"] == str(catalogue.products[1].price * 3)
    assert (await client.get("/api/cart", headers=auth)).json() == {"lines": []}

    order_id = body["order_id"]
    await shop.drain(30)
    order = (await client.get(f"/api/orders/{order_id}", headers=auth)).json()
    assert order["status"] == "paid"
    assert order["shipment"]["status"] == "created"
    assert order["shipment"]["tracking_number"].startswith("EC")
    orders = (await client.get("/api/orders", headers=auth)).json()
    assert [o["id"] for o in orders["items"]] == [order_id]

    recommended = await client.get(
        "/api/recommendations", params={"product_id": catalogue.ids[1], "limit": 2}
    )
    assert recommended.status_code == 200
    assert set(recommended.json()["product_ids"]) <= set(catalogue.ids) - {catalogue.ids[1]}

    out = await client.post("/api/users/logout", headers=auth)
    assert out.status_code == 204
    assert (await client.get("/api/cart", headers=auth)).status_code == 401


async def test_users_never_see_each_others_cart_or_orders(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    catalogue = await make_catalogue(shop, 1, stock=5)
    alice, bob = await _login(client), await _login(client)
    await client.post("/api/cart/items", json={"product_id": catalogue.ids[0]}, headers=alice)
    assert (await client.get("/api/cart", headers=bob)).json() == {"lines": []}
    order_id = (await client.post("/api/checkout", headers=alice)).json()["order_id"]

    assert (await client.get(f"/api/orders/{order_id}", headers=bob)).status_code == 404
    assert (await client.get("/api/orders", headers=bob)).json()["total"] == 0
    again = await client.post("/api/checkout", json={"order_id": order_id}, headers=bob)
    assert again.status_code == 404
    assert (await client.get(f"/api/orders/{order_id}", headers=alice)).status_code == 200


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 422),
        (b'{"product_id": "1", "quantity": 1}', 422),
        (b'{"product_id": 1, "quantity": 0}', 422),
        (b'{"product_id": 1, "quantity": -3}', 422),
        (b'{"product_id": 1, "quantity": 1000000}', 422),
        (b'{"product_id": 1, "quantity": 1.5}', 422),
        (b'{"product_id": 1, "quantity": 1, "price": "0.01"}', 422),
        (b'[]', 422),
        (b'{"product_id": 999999999999, "quantity": 1}', 404),
        # In the column's range (bigint) but no such product: 404, and past it (no row has it).
        (b'{"product_id": 4611686018427387904, "quantity": 1}', 404),
        (b'{"product_id": 9223372036854775807, "quantity": 1}', 404),
        (b'{"product_id": 9223372036854775999, "quantity": 1}', 404),
    ],
)
async def test_bad_cart_input_gets_a_json_4xx(
    client: httpx.AsyncClient, body: bytes, status: int
) -> None:
    auth = await _login(client)
    response = await client.post(
        "/api/cart/items", content=body,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status_code == status, response.text
    assert set(response.json()) == {"error", "message"}
    assert (await client.get("/api/cart", headers=auth)).json() == {"lines": []}


async def test_oversized_bodies_missing_auth_and_bad_ids(client: httpx.AsyncClient) -> None:
    huge = b'{"email": "' + b"a" * 100_000 + b'"}'
    too_big = await client.post("/api/users/register", content=huge,
                                headers={"Content-Type": "application/json"})
    assert too_big.status_code == 413 and too_big.json()["error"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size shows as it comes
        yield b'{"email": "'
        for _ in range(20):
            yield b"a" * 8192

    chunked = await client.post("/api/users/register", content=chunks(),
                                headers={"Content-Type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert chunked.status_code == 413 and chunked.json()["error"] == "payload_too_large"
    assert (await client.get(f"/api/products/{2**62}")).status_code == 404
    assert (await client.get(f"/api/products/{2**63}")).status_code == 404
    shopper = await _login(client)
    for quantity in (1, 0):  # 0 removes a line without a product lookup: still 404
        assert (await client.patch(f"/api/cart/items/{2**64}", json={"quantity": quantity},
                                   headers=shopper)).status_code == 404
    assert (await client.delete(f"/api/cart/items/{2**63}", headers=shopper)).status_code == 404
    assert (await client.get("/api/cart")).status_code == 401
    bad = await client.get("/api/cart", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert (await client.get("/api/products/0")).status_code == 422
    assert (await client.get("/api/products/abc")).status_code == 422
    assert (await client.get("/api/orders/not-a-uuid",
                             headers=await _login(client))).status_code == 422


async def test_login_failures_are_uniform_and_throttled(client: httpx.AsyncClient) -> None:
    email = f"h-{uuid.uuid4().hex[:12]}@example.test"
    await _login(client, email)
    wrong = await client.post("/api/users/login", json={"email": email, "password": "wrong-1"})
    unknown = await client.post(
        "/api/users/login", json={"email": f"x{email}", "password": "wrong-1"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    statuses = [
        (await client.post("/api/users/login",
                           json={"email": email, "password": "wrong-2"})).status_code
        for _ in range(6)
    ]
    assert statuses[-1] == 429
    throttled = await client.post("/api/users/login",
                                  json={"email": email, "password": "s3cret-pass"})
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0


async def test_nul_characters_are_refused_not_a_server_error(client: httpx.AsyncClient) -> None:
    """PostgreSQL text cannot hold NUL; the fuzzer found a 500 on a category slug with one."""
    listed = await client.get("/api/products", params={"category": "9\x00\x89j", "page": 2})
    assert listed.status_code == 422, listed.text
    # The document's pattern refuses control characters before any query runs.
    assert listed.json()["error"] == "invalid_request"
    registered = await client.post("/api/users/register", json={
        "email": f"nul-{uuid.uuid4().hex[:8]}@example.com", "password": "s3cret-pass",
        "full_name": "Ada\x00Lovelace",
    })
    assert registered.status_code == 422, registered.text


async def test_answers_the_fuzzer_found_out_of_the_document(
    shop: ShopStack, client: httpx.AsyncClient
) -> None:
    """Each was a contract failure of `schemathesis run --checks all` (issue 11)."""
    word = f"zq{uuid.uuid4().hex[:8]}"
    catalogue = await make_catalogue(shop, 2, stock=500, index=True, word=word)
    first, second = catalogue.ids
    auth = await _login(client)
    # A login with a NUL in the email is a wrong login like any other, not a 422.
    nul = await client.post("/api/users/login", json={"email": "a\x00@b.co", "password": "x"})
    assert nul.status_code == 401, nul.text
    # JSON Schema's integer includes 3.0.
    added = await client.post("/api/cart/items", headers=auth,
                              json={"product_id": float(first), "quantity": 3.0})
    assert added.status_code == 201 and added.json()["lines"][0]["quantity"] == 3, added.text
    # The line limit is the cart's state refusing a valid request: 409, not 422.
    full = await client.post("/api/cart/items", headers=auth,
                             json={"product_id": first, "quantity": 98})
    assert full.status_code == 409 and full.json()["error"] == "cart_full", full.text
    # PATCH changes a line in the cart: one removed (or never added) stays out, 409 (the
    # product exists: 404 says it does not).
    missing = await client.patch(f"/api/cart/items/{second}", json={"quantity": 2},
                                 headers=auth)
    assert missing.status_code == 409 and missing.json()["error"] == "not_in_cart"
    assert (await client.delete(f"/api/cart/items/{first}", headers=auth)).status_code == 200
    gone = await client.patch(f"/api/cart/items/{first}", json={"quantity": 2}, headers=auth)
    assert gone.status_code == 409 and gone.json()["error"] == "not_in_cart", gone.text
    assert (await client.patch("/api/cart/items/999999999999", json={"quantity": 2},
                               headers=auth)).status_code == 404
    assert (await client.get("/api/cart", headers=auth)).json() == {"lines": []}
    # An inverted price range is a client's mistake, said as such.
    swapped = await client.get("/api/search", params={"q": word, "min_price": "50",
                                                      "max_price": "5.5"})
    assert swapped.status_code == 422 and "min_price 50.00 is above max_price 5.50" in (
        swapped.json()["message"]), swapped.text
    found = await client.get("/api/search", params={"q": word, "max_price": "1000"})
    assert found.json()["total"] == 2, found.text
    # Logout ends a valid session, and answers 401 to one that is not (any more).
    assert (await client.post("/api/users/logout", headers=auth)).status_code == 204
    again = await client.post("/api/users/logout", headers=auth)
    assert again.status_code == 401 and again.headers["www-authenticate"] == "Bearer"


async def test_backend_outage_is_503_not_500(shop: ShopStack, client: httpx.AsyncClient) -> None:
    """Elasticsearch unreachable: search answers 503 with a JSON body, the rest keeps working."""
    from elasticsearch import AsyncElasticsearch

    dead = AsyncElasticsearch("http://127.0.0.1:1", request_timeout=1, max_retries=0)
    real = shop.search_index.use_client(dead)
    try:
        response = await client.get("/api/search", params={"q": "anything"})
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "backend_unavailable"
        assert (await client.get("/healthz")).status_code == 200
        not_ready = await client.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["checks"] == {
            "postgres": True, "redis": True, "elasticsearch": False,
        }
    finally:
        shop.search_index.use_client(real)
        await dead.close()
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
