"""The gateway and its OpenAPI document agree, without backends: what the document says of
inputs, 405 answers and undecodable bodies (the fuzz test checks the rest against the live
stack)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from ecomctl.gateway import schemas as s
from ecomctl.gateway.app import create_app


async def _no_readiness() -> dict[str, bool]:
    return {}


@pytest.fixture(scope="module")
def app() -> FastAPI:
    # No services: every request below is refused before a handler would use one.
    return create_app(None, _no_readiness)  # type: ignore[arg-type]


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        yield http


def _matches(pattern: str, text: str) -> bool:
    """JSON Schema's reading of an anchored pattern: Python's $ would also match before a
    final newline, which JSON Schema's (and pydantic's) does not."""
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), text) is not None


def _operations(app: FastAPI) -> dict[str, dict[str, Any]]:
    return {f"{method.upper()} {path}": op
            for path, methods in app.openapi()["paths"].items() for method, op in methods.items()}


def test_session_routes_declare_the_bearer_scheme_and_401(app: FastAPI) -> None:
    scheme = app.openapi()["components"]["securitySchemes"]["session"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    secured = {label for label, op in _operations(app).items() if op.get("security")}
    assert secured == {
        "POST /api/users/logout", "GET /api/users/me", "GET /api/cart", "POST /api/cart/items",
        "PATCH /api/cart/items/{product_id}", "DELETE /api/cart/items/{product_id}",
        "POST /api/orders", "GET /api/orders", "POST /api/orders/{order_id}/cancel",
        "GET /api/orders/{order_id}", "POST /api/checkout",
    }
    for label, op in _operations(app).items():
        assert ("401" in op["responses"]) == (label in secured or label.endswith("/login"))
        # No operation takes the token as a parameter of its own.
        assert not [p for p in op.get("parameters", []) if p["name"].lower() == "authorization"]


def test_every_operation_with_a_body_documents_413_and_422(app: FastAPI) -> None:
    for label, op in _operations(app).items():
        if "requestBody" in op:
            assert {"413", "422"} <= set(op["responses"]), label


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("ann.lee1@example.com", True),
        ("first.last+tag@mail.example.co.uk", True),
        ("o'brien@a-b.example", True),
        ("a@b.c", True),
        ("jürgen@bücher.example", False),  # not format: email (that is idn-email)
        ("a@localhost", False),  # the service wants a dotted domain
        ("a..b@example.com", False),
        (".a@example.com", False),
        ("a@-example.com", False),
        ("a@ab--c.example", False),  # IDNA reserves "--" in 3rd and 4th place
        ("a@" + "b" * 64 + ".example", False),  # a label is at most 63 characters
        ("a b@example.com", False),
        (" a@example.com", False),
        ("a@example.com\n", False),
    ],
)
def test_the_email_pattern_is_format_email_narrowed_to_what_the_service_takes(
    email: str, valid: bool
) -> None:
    assert _matches(s.EMAIL, email) is valid
    assert ("format", "email") in s.RegisterRequest.model_json_schema()["properties"][
        "email"].items()


@pytest.mark.parametrize(
    ("text", "valid"),
    [("x", True), (" a ", True), ("Ada Lovelace", True), ("", False), (" ", False),
     ("\u3000\xa0", False), ("a\x00b", False), ("a\nb", False), ("\x85", False)],
)
def test_visible_text_is_what_the_services_accept_once_stripped(text: str, valid: bool) -> None:
    assert _matches(s.VISIBLE_TEXT, text) is valid


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/orders", "GET, POST"),
        ("GET", "/api/cart/items/7", "DELETE, PATCH"),
        ("POST", "/healthz", "GET"),
        ("DELETE", "/api/checkout", "POST"),
    ],
)
async def test_405_allow_lists_every_documented_method_of_the_path(
    client: httpx.AsyncClient, app: FastAPI, method: str, path: str, allow: str
) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"] == "http_error"
    template = re.sub(r"/7$", "/{product_id}", path)
    documented = {label.split()[0] for label in _operations(app) if label.split()[1] == template}
    assert set(allow.split(", ")) == documented


@pytest.mark.parametrize("body", [b'"\xff"', b'{"quantity": "\xc3\x28"}', b"{not json"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/users/login"), ("POST", "/api/checkout"),
     ("PATCH", "/api/cart/items/7"), ("POST", "/api/users/register")],
)
async def test_an_undecodable_body_is_the_documented_422_not_400(
    client: httpx.AsyncClient, method: str, path: str, body: bytes
) -> None:
    response = await client.request(method, path, content=body,
                                    headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    "params",
    [
        {"q": "shoes", "max_price": ""},
        {"q": "shoes", "min_price": "1e3"},
        {"q": "shoes", "min_price": "9.999"},
        {"q": "shoes", "max_price": " 5"},
        {"q": "shoes", "max_price": "1000000000"},
        {"q": "   "},
        {"q": "shoes", "category": "\x00"},
        {"q": "shoes", "page": "101"},  # 100 x 100 is Elasticsearch's 10,000-hit window
    ],
)
async def test_search_inputs_outside_the_document_are_422(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    response = await client.get("/api/search", params=params)
    assert response.status_code == 422, response.text


async def test_register_refuses_what_the_document_refuses_before_any_service(
    client: httpx.AsyncClient,
) -> None:
    for body in (
        {"email": "jürgen@bücher.example", "password": "s3cret-pass", "full_name": "J"},
        {"email": "a@example.com", "password": "s3cret-pass", "full_name": " \t"},
        {"email": "a@example.com", "password": "short", "full_name": "A"},
    ):
        response = await client.post("/api/users/register", json=body)
        assert response.status_code == 422, response.text


async def test_a_timeout_of_the_requests_own_is_a_503_with_retry_after() -> None:
    from ecomctl.gateway.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)

    @app.get("/slow")
    async def slow() -> None:
        raise TimeoutError("the carrier did not answer")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/slow")
    assert answer.status_code == 503 and answer.headers["retry-after"] == "1"
    assert answer.json() == {"error": "timed_out", "message": "the request timed out; try again"}
