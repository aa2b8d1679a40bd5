"""``ecomctl traces diff`` as CI uses it: two short simulations of the same shoppers, the
second with a slow statement in checkout's stock reservation (``--fault db-slow=50``, a
``pg_sleep`` in the transaction); the diff must name that statement's span first and fail
the build with ``--fail-on``.

Ten shoppers (the default) log in together before each measured run, queueing for the
password hash on a busy machine: their logins once outranked the slowed statement (+1.1 s of
self time over 6 calls against +0.9 s over 17). They are set-up, left out of the comparison,
and the rows rank by self time added beyond noise."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SHOPPERS = 10
SIMULATION = ("--no-live", "--seed", "7", "--shoppers", str(SHOPPERS), "--duration", "8s",
              "--think-time", "0.05", "--weights", "checkout=6,browse=2")
# Why the slowed statement ranks first: its shift per call, its calls, and how far beyond
# noise (t; "steady" when no call varied).
SHIFT = re.compile(r"^\+[\d,.]+ ms/call over \d+ calls, (t=[\d,]+(\.\d)?|steady)$")


def simulate(ecomctl: Any, seeded: Path, out_dir: Path, label: str, *args: str
             ) -> tuple[Path, Path]:
    """(the result document, the trace capture) of one run."""
    document, capture = out_dir / f"{label}.json", out_dir / f"{label}.otlp.jsonl"
    result = ecomctl("checkout", "simulate", "--credentials", str(seeded), "--out",
                     str(document), "--trace-file", str(capture), *SIMULATION, *args)
    # The suite runs one thing at a time against the shop: the run succeeds, invariants too.
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run = json.loads(document.read_text())
    assert run["totals"]["checkouts"].get("paid", 0) >= 5, run["totals"]
    assert capture.stat().st_size > 0
    return document, capture


def test_diff_names_the_slowed_statement_first_and_fails_the_build(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    base_doc, base = simulate(ecomctl, seeded, tmp_path, "base")
    _, slow = simulate(ecomctl, seeded, tmp_path, "slow", "--fault", "db-slow=50")

    compared = ecomctl("traces", "diff", str(base), str(slow), "--json")
    assert compared.exit_code == 0, compared.stderr
    data = json.loads(compared.stdout)
    assert data["schema"] == "ecomctl.trace-diff/1"
    assert data["base"]["source"] == str(base) and data["current"]["source"] == str(slow)
    first = data["operations"][0]
    top = [(o["service"], o["name"], o["change"]["self_added_ms"], o["why"])
           for o in data["operations"][:5]]
    # The pg_sleep statement's own span, not the checkout or gateway spans above it.
    assert (first["service"], first["name"]) == ("inventory", "SELECT"), top
    assert first["statement"].startswith("SELECT pg_sleep"), first
    assert SHIFT.match(first["why"]) and first["change"]["self_per_call_ms"] >= 50, first
    assert first["change"]["signal_ms"] >= 50 * first["current"]["count"] * 0.9, first["change"]
    # The shoppers' logins before each measured run are not compared.
    assert data["base"]["setup_traces_left_out"] == SHOPPERS, data["base"]
    assert data["current"]["setup_traces_left_out"] == SHOPPERS, data["current"]
    assert ("user", "user.login") not in {(o["service"], o["name"]) for o in data["operations"]}
    assert first["status"] == "appeared" and first["base"] is None
    calls = first["current"]["count"]
    assert calls >= 5 and first["current"]["p50_ms"] >= 50
    assert first["change"]["self_added_ms"] >= 50 * calls * 0.95
    assert first["change"]["path_share"] > 0  # it sits on the checkouts' critical path
    reserve = next(o for o in data["operations"]
                   if (o["service"], o["name"]) == ("inventory", "inventory.reserve"))
    assert reserve["change"]["p50_ms"] >= 40  # its parent got slower by about as much...
    assert abs(reserve["change"]["self_per_call_ms"]) < 10  # ...but not in itself

    # The baseline as a result document (its trace_file is read); the table as a CI log
    # shows it, 80 columns wide; a broken rule exits 3 and says which span broke it.
    failed = ecomctl("traces", "diff", str(base_doc), str(slow), "--fail-on", "self>+20ms",
                     env={"COLUMNS": "80"})
    assert failed.exit_code == 3, failed.stdout + failed.stderr
    lines = failed.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("┃") and "operation" in line)
    first_row = next(line for line in lines[header:] if line.startswith("│"))
    assert first_row.split("│")[1].strip() == "inventory SELECT (new)", failed.stdout
    assert re.match(r"\+[\d,.]+ ms/call", first_row.split("│")[-2].strip()), failed.stdout
    assert f"left out set-up traces (shopper logins before the measured run): {SHOPPERS} in " \
           "the baseline" in " ".join(failed.stdout.split())
    assert all(len(line) <= 80 for line in lines), failed.stdout
    text = " ".join(failed.stdout.split())
    assert "✗ --fail-on self>+20ms: inventory SELECT: self/call" in text, failed.stdout
    assert "statement: SELECT pg_sleep" in text

    # A rule nothing breaks passes; a rule that cannot be read is a usage error.
    calm = ecomctl("traces", "diff", str(base), str(slow), "--fail-on", "self>+10s")
    assert calm.exit_code == 0, calm.stdout + calm.stderr
    assert "✓ --fail-on self>+10s" in calm.stdout
    bad = ecomctl("traces", "diff", str(base), str(slow), "--fail-on", "p95>+20")
    assert bad.exit_code == 2 and "--fail-on" in bad.stderr
