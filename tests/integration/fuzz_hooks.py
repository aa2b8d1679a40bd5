"""Schemathesis hooks for test_http_fuzz.py, loaded by the `schemathesis run` process it starts
(``SCHEMATHESIS_HOOKS=tests.integration.fuzz_hooks``); the test passes the gateway's URL, the
fuzz shopper's session, a second shopper's credentials, the test catalogue's product ids, two
Pending orders of the fuzz shopper and where to write the status counts through
``ECOMCTL_FUZZ_*`` variables.

- A kept session: every operation that declares the ``session`` scheme gets the fuzz shopper's
  one session, logged in by the test, except logout, which gets a session of its own (a second
  shopper logged in for that case), so no case ends the session every other case uses. The
  fuzzer never logs the fuzz shopper in again: it learns that email (GET /api/users/me) and
  tries it with wrong passwords, which soon throttles that account's logins, as it should.
- Real ids, sometimes: a valid product id may be swapped for one of the test catalogue's, and a
  valid order id for a Pending order of the fuzz shopper, so the cart and order operations reach
  their 2xx answers and not only 404. Only a valid id is swapped, for another valid one: a
  negative case stays negative.
- One Idempotency-Key per intent, as the document asks of clients: a valid generated key gets
  a unique suffix, or two cases drawing the same key would be told (rightly) 422, "the same
  key with another request".
- Price ranges the right way round: a search whose min_price is above its max_price is refused
  (422), a rule between two parameters that no schema of them can state (the document says
  it in words), so valid bounds are put in order before the call.
- Every answer's status is counted per operation into ``ECOMCTL_FUZZ_COUNTS`` (JSON).
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
import uuid
from collections import Counter, defaultdict
from decimal import Decimal
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st

from ecomctl.gateway.schemas import MAX_ID

BASE_URL = os.environ["ECOMCTL_FUZZ_BASE_URL"]
TOKEN = os.environ["ECOMCTL_FUZZ_TOKEN"]
LOGOUT_EMAIL = os.environ["ECOMCTL_FUZZ_LOGOUT_EMAIL"]
LOGOUT_PASSWORD = os.environ["ECOMCTL_FUZZ_LOGOUT_PASSWORD"]
PRODUCT_IDS = [int(pid) for pid in os.environ["ECOMCTL_FUZZ_PRODUCT_IDS"].split(",") if pid]
# Pending orders of the fuzz shopper: one for the order_id path parameters (GET and cancel),
# one for checkout's order_id, so cancelling the one never leaves the other nothing to pay.
PATH_ORDER_ID = os.environ["ECOMCTL_FUZZ_PATH_ORDER_ID"]
BODY_ORDER_ID = os.environ["ECOMCTL_FUZZ_BODY_ORDER_ID"]
COUNTS_PATH = os.environ["ECOMCTL_FUZZ_COUNTS"]

LOGOUT = "POST /api/users/logout"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY_CHARS = 255

_counts: defaultdict[str, Counter[int]] = defaultdict(Counter)
_counts_lock = threading.Lock()


def logout_session() -> str:
    """A new session of the second shopper; waits out short 429/503 push-back (the fuzzed
    logins with wrong passwords drain the same per-address bucket)."""
    give_up = time.monotonic() + 30
    while True:
        response = requests.post(f"{BASE_URL}/api/users/login", timeout=10,
                                 json={"email": LOGOUT_EMAIL, "password": LOGOUT_PASSWORD})
        if response.status_code == 200:
            token: str = response.json()["token"]
            return token
        wait = float(response.headers.get("Retry-After", "1"))
        if response.status_code not in (429, 503) or time.monotonic() + wait > give_up:
            raise RuntimeError(f"logout shopper's login: HTTP {response.status_code} "
                               f"{response.text}")
        time.sleep(wait)


@schemathesis.auth(refresh_interval=None)  # no cache: get() below decides per case
class KeptSession:
    def get(self, case: Any, ctx: Any) -> str | None:
        if not case.operation.definition.raw.get("security"):
            return None
        if case.operation.label == LOGOUT:
            return logout_session()  # ends only itself
        return TOKEN

    def set(self, case: Any, data: str, ctx: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


def _valid_product_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ID


def _valid_order_id(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _with_real_ids(container: Any, order_id: str) -> Any:
    """The generated ids, or real ones in their place (each a choice Hypothesis makes, so it
    shrinks and replays like the rest)."""
    if not isinstance(container, dict):
        return st.just(container)
    choices = [container]
    if _valid_product_id(container.get("product_id")):
        choices += [{**container, "product_id": pid} for pid in PRODUCT_IDS]
    if _valid_order_id(container.get("order_id")):
        choices.append({**container, "order_id": order_id})
    return st.sampled_from(choices)


@schemathesis.hook
def flatmap_body(ctx: Any, body: Any) -> Any:
    return _with_real_ids(body, BODY_ORDER_ID)


@schemathesis.hook
def flatmap_path_parameters(ctx: Any, path_parameters: Any) -> Any:
    return _with_real_ids(path_parameters, PATH_ORDER_ID)


def _price(value: object) -> Decimal | None:
    try:
        return Decimal(value) if isinstance(value, str) and value.isascii() else None
    except ArithmeticError:
        return None


@schemathesis.hook
def map_query(ctx: Any, query: Any) -> Any:
    if isinstance(query, dict):
        low, high = _price(query.get("min_price")), _price(query.get("max_price"))
        if low is not None and high is not None and low > high:
            query = {**query, "min_price": query["max_price"], "max_price": query["min_price"]}
    return query


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: Any) -> None:
    key = (case.headers or {}).get(IDEMPOTENCY_HEADER)
    if isinstance(key, str) and key and key.isascii() and key.isprintable() \
            and key == key.strip() and len(key) <= MAX_KEY_CHARS:
        suffix = f" {uuid.uuid4()}"
        case.headers[IDEMPOTENCY_HEADER] = key[: MAX_KEY_CHARS - len(suffix)] + suffix


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    with _counts_lock:
        _counts[case.operation.label][response.status_code] += 1


@atexit.register
def _write_counts() -> None:
    with _counts_lock:
        document = {label: dict(statuses) for label, statuses in _counts.items()}
    with open(COUNTS_PATH, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=1, sort_keys=True)
