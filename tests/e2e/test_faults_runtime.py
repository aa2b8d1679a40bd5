"""Faults flipped at runtime: `ecomctl faults set` edits the flag file (flagd's format) and
every `ecomctl serve` process watching it applies the change, without a restart."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from ecomctl.load.runner import free_port
from tests.e2e.served import Served

pytestmark = pytest.mark.long  # several serve processes (`pytest -m long`)

APPLY_BOUND_S = 2.0


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _product_id(base: str) -> int:
    """A listed product of the seeded shop (found the way a shopper finds one)."""
    with urllib.request.urlopen(f"{base}/api/search?q=a", timeout=10) as response:
        body = json.loads(response.read())
    return int(body["items"][0]["product_id"])


def _wait_line(served: Served, marker: str, after: int, timeout_s: float) -> float:
    """When (monotonic) a line with ``marker`` appeared among lines from index ``after``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(marker in line for line in served.lines[after:]):
            return time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"no {marker!r} within {timeout_s}s:\n{served.output[-2000:]}")


def _change_everywhere(ecomctl: Any, env: dict[str, str], shops: list[tuple[Served, str]],
                       command: list[str], lines: list[str], path: str, status: int) -> None:
    """Run ``ecomctl faults COMMAND``; every process logs ``lines`` (the first within
    APPLY_BOUND_S of the file being written) and then answers ``path`` with ``status``."""
    marks = [len(served.lines) for served, _ in shops]
    result = ecomctl("faults", *command, env=env)
    started = time.monotonic()  # the file is written when the command returns
    assert result.exit_code == 0, result.stderr
    for (served, url), mark in zip(shops, marks, strict=True):
        seen = _wait_line(served, lines[0], mark, 10)
        assert seen - started < APPLY_BOUND_S, f"{lines[0]} after {seen - started:.2f}s"
        for line in lines[1:]:
            _wait_line(served, line, mark, 10)
        assert _status(f"{url}{path}") == status


def test_faults_set_reaches_two_serve_processes_within_two_seconds(
    ecomctl: Any, seeded: Path, tmp_path: Path, serving: list[Served],
) -> None:
    flags = tmp_path / "flags.json"
    env = {"ECOMCTL_FLAGS_FILE": str(flags)}
    shops = []
    for _ in range(2):
        port = free_port()
        served = Served("--port", str(port), "--workers", "1", "--flags-file", str(flags))
        serving.append(served)
        shops.append((served, f"http://127.0.0.1:{port}"))
    for served, _ in shops:
        served.wait_for("listening on")
    product = _product_id(shops[0][1])
    assert all(_status(f"{url}/api/products/{product}") == 200 for _, url in shops)

    _change_everywhere(
        ecomctl, env, shops, ["set", "payment-decline=0.5", f"product-failure={product}"],
        ["fault applied: payment-decline=0.5", f"fault applied: product-failure={product}"],
        # The catalogue fails for that product now, in each process: a real effect.
        f"/api/products/{product}", 503)

    listed = ecomctl("faults", "list", "--json", env=env)
    active = {f["name"]: f["value"] for f in listed.json()["faults"] if f["active"]}
    assert active == {"payment-decline": "0.5", "product-failure": str(product)}

    _change_everywhere(
        ecomctl, env, shops, ["clear"],
        ["fault cleared: payment-decline=0.5", f"fault cleared: product-failure={product}"],
        f"/api/products/{product}", 200)

    # A bad value is refused before it reaches the file, so no process sees it.
    refused = ecomctl("faults", "set", "payment-decline=7", env=env)
    assert refused.exit_code == 2
    assert "RATE" in refused.stderr
    for served, _ in shops:
        assert served.stop() == 0
