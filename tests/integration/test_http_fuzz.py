"""Schema-driven fuzzing of the live gateway: `schemathesis run --checks all`, every phase
(examples, coverage, fuzzing, stateful), must find nothing at all: no 5xx, and no answer the
OpenAPI document does not describe (a status it does not list, a valid request refused, an
invalid one accepted, a 405 whose Allow header leaves a method out...).

The run keeps a valid session for every case (tests/integration/fuzz_hooks.py: logout ends a
session of its own), so the operations behind it are exercised, not only answered 401: each
one must get at least one 2xx.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ecomctl.bootstrap import ShopStack
from tests.shopdata import make_catalogue

pytestmark = pytest.mark.long  # fuzzing every route (`pytest -m long`)

REPO_ROOT = Path(__file__).resolve().parents[2]
SEED = 20261125
MAX_EXAMPLES = 10  # per operation and phase; about 900 cases in all, 30-40 s
# The stateful phase chains operations through the document's links (POST /api/orders ->
# cancel_order...); more and longer scenarios than the default reach every one of them.
CONFIG = """
[phases.stateful]
max-steps = 10

[phases.stateful.generation]
max-examples = 40
"""
PASSWORD = "fuzzing-pass-123"


async def _shopper(client: httpx.AsyncClient) -> str:
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.test"
    created = await client.post("/api/users/register",
                                json={"email": email, "password": PASSWORD, "full_name": "F"})
    assert created.status_code == 201, created.text
    return email


def _table(counts: dict[str, dict[str, int]]) -> str:
    rows = [f"{'operation':<40} {'calls':>5} {'2xx':>5}  statuses"]
    for label, statuses in sorted(counts.items()):
        ok = sum(n for status, n in statuses.items() if 200 <= int(status) < 300)
        rows.append(f"{label:<40} {sum(statuses.values()):>5} {ok:>5}  "
                    + " ".join(f"{status}x{n}" for status, n in sorted(statuses.items())))
    return "\n".join(rows)


async def test_fuzzing_with_every_check_and_a_kept_session_finds_nothing(
    shop: ShopStack, gateway_url: str, tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    catalogue = await make_catalogue(shop, 4, stock=1_000_000, index=True)
    offered, kept = catalogue.ids[:3], catalogue.ids[3]  # the hooks offer the first three
    async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
        fuzz_email, logout_email = await _shopper(client), await _shopper(client)
        login = await client.post("/api/users/login",
                                  json={"email": fuzz_email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        auth = {"Authorization": f"Bearer {login.json()['token']}"}
        # Two Pending orders for the order operations to find (the hooks offer their ids),
        # then a cart holding something else, so that paying the cart does not pay them and
        # POST /api/orders has a cart to order until a checkout buys it (the hooks never offer
        # that product's id to the line operations).
        pending = []
        for quantity in (1, 2):
            added = await client.post("/api/cart/items", headers=auth,
                                      json={"product_id": offered[0], "quantity": quantity})
            assert added.status_code == 201, added.text
            placed = await client.post("/api/orders", headers=auth)
            assert placed.status_code == 201 and placed.json()["status"] == "pending"
            pending.append(placed.json()["id"])
            await client.delete(f"/api/cart/items/{offered[0]}", headers=auth)
        added = await client.post("/api/cart/items", headers=auth, json={"product_id": kept})
        assert added.status_code == 201, added.text
        spec = (await client.get("/openapi.json")).json()
    operations = {f"{method.upper()} {path}": op
                  for path, methods in spec["paths"].items() for method, op in methods.items()}
    secured = sorted(label for label, op in operations.items() if op.get("security"))
    assert len(operations) == 19 and len(secured) == 11, sorted(operations)

    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    counts_path = tmp_path / "counts.json"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.integration.fuzz_hooks",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "ECOMCTL_FUZZ_BASE_URL": gateway_url,
        "ECOMCTL_FUZZ_TOKEN": login.json()["token"],
        "ECOMCTL_FUZZ_LOGOUT_EMAIL": logout_email,
        "ECOMCTL_FUZZ_LOGOUT_PASSWORD": PASSWORD,
        "ECOMCTL_FUZZ_PRODUCT_IDS": ",".join(map(str, offered)),
        "ECOMCTL_FUZZ_PATH_ORDER_ID": pending[0],
        "ECOMCTL_FUZZ_BODY_ORDER_ID": pending[1],
        "ECOMCTL_FUZZ_COUNTS": str(counts_path),
    }
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("schemathesis")), "--config-file", str(config),
        "run", f"{gateway_url}/openapi.json",
        "--checks", "all",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED),
        "--report", "ndjson", "--report-ndjson-path", str(tmp_path / "events.ndjson"),
        "--no-color",
        cwd=REPO_ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    text = output.decode(errors="replace")
    (tmp_path / "schemathesis.txt").write_text(text)
    counts: dict[str, dict[str, int]] = (
        json.loads(counts_path.read_text()) if counts_path.exists() else {}
    )
    table = _table(counts)
    summary = re.search(r"(\d+) generated, (\d+) passed.*", text)
    headline = summary.group(0) if summary else "no summary"
    print(f"\nschemathesis: {headline}; per operation:\n{table}")  # noqa: T201 - the figures
    assert process.returncode == 0, f"{text[-6000:]}\n{table}"

    assert summary is not None, text[-3000:]
    generated, passed = map(int, summary.groups())
    assert generated == passed >= 500, text[-3000:]
    assert "No issues found" in text, text[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅\s+{phase}", text), f"{phase} did not run and pass:\n{text[-3000:]}"
    assert set(counts) == set(operations), table
    assert not [s for statuses in counts.values() for s in statuses if int(s) >= 500], table
    never_ok = [label for label in secured
                if not any(200 <= int(s) < 300 for s in counts[label])]
    assert not never_ok, f"authenticated operations never answered 2xx: {never_ok}\n{table}"

    record_property("fuzz_cases", generated)
    record_property("fuzz_status_counts", json.dumps(counts, sort_keys=True))
