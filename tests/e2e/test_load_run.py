"""``ecomctl load run`` as a user runs it, against the seeded shop: ecomctl starts the gateway
(capturing its spans), Locust runs in its own processes, the histograms are merged, and the
invariants are checked after the consumers have drained."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from junitparser import JUnitXml

from ecomctl.analysis.readers import read_file
from ecomctl.histogram import LatencyHistogram
from ecomctl.load.runner import free_port
from ecomctl.resources import fixtures_dir
from tests.cli_runner import ecomctl_command

pytestmark = pytest.mark.long  # processes: Locust and the gateway it starts

SMOKE_GATES = fixtures_dir() / "gates" / "smoke.yaml"

# A journey that takes 0.3 s although it is due every 0.1 s: each user falls further behind
# its schedule, and a latency measured from the intended start has to show it.
# (`ecomctl load run` puts scenarios/ on the Locust processes' path.)
SLOW_LOCUSTFILE = """
import gevent
from locust import task
from shop import ShopUser



class SlowJourneyShopper(ShopUser):
    @task
    def slow(self):
        def steps(user):
            gevent.sleep(0.3)
            user.view_product(user.shop.product_ids[0])

        self.run_journey("slow", steps)
"""


def load_run(ecomctl: Any, seeded: Path, out: Path, *args: str,
             env: dict[str, str] | None = None) -> dict[str, Any]:
    # The gateway's span capture goes to the test's directory, not the shared trace store.
    env = {"ECOMCTL_TRACE_DIR": str(out.parent / "traces"), **(env or {})}
    result = ecomctl("load", "run", "--out", str(out), "--no-live",
                     "--credentials", str(seeded), *args, env=env, timeout=240)
    assert result.exit_code == 0, _why_it_failed(out) + _stderr_worth_reading(result.stderr)
    document: dict[str, Any] = json.loads(out.read_text())
    assert document["schema"] == "ecomctl.result/v1" and document["kind"] == "load-run"
    assert document["config"]["gateway"] == "started"
    assert Path(document["trace_file"]).parent == out.parent / "traces"
    assert document["drained"] is True
    assert document["ok"] is True, document["invariants"]
    assert len(document["invariants"]) >= 4 and all(i["ok"] for i in document["invariants"])
    # The payment gateway's books, written by the gateway as it stopped, match ours.
    ledger = next(i for i in document["invariants"]
                  if i["name"] == "gateway ledger equals database")
    assert ledger["ok"] and ledger["detail"].startswith("ok: "), ledger
    return document


HUNG = "no clean stop within"
"""What a serve process that missed its stop deadline prints (cli/shutdown.StopDeadline)
before its tasks' stacks."""


def _stderr_worth_reading(stderr: str) -> str:
    """The end of the output, and a hung process's asyncio tasks (printed before its thread
    dump, which alone fills the end and names no coroutine)."""
    hung = stderr.find(HUNG)
    tasks = "" if hung < 0 else stderr[max(0, hung - 500):hung + 12_000] + "\n[...]\n"
    return tasks + stderr[-3000:]


def _why_it_failed(out: Path) -> str:
    """What a failed run's document says went wrong (its tables alone do not)."""
    if not out.exists():
        return "no result document; "
    document = json.loads(out.read_text())
    broken = [i for i in document.get("invariants") or [] if not i["ok"]]
    return (f"drained: {document.get('drained')}, totals: {document.get('totals')}, errors: "
            f"{document.get('errors')}, broken invariants: {broken}; ")


def _serving_instances(trace_file: Path) -> set[str]:
    """The ``service.instance.id`` of every process with gateway server spans (requests it
    answered) in the capture."""
    instances = set()
    for line in trace_file.read_text().splitlines():
        for resource_spans in json.loads(line).get("resourceSpans", []):
            attributes = {a["key"]: a["value"].get("stringValue")
                          for a in resource_spans["resource"].get("attributes", [])}
            served = any(span.get("kind") in (2, "SPAN_KIND_SERVER")
                         for scope in resource_spans.get("scopeSpans", [])
                         for span in scope.get("spans", []))
            if attributes.get("service.name") == "gateway" and served:
                instances.add(str(attributes.get("service.instance.id")))
    return instances


def test_the_gateway_it_starts_can_run_two_api_processes(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    """``--serve-workers 2``: two API processes on the port, the events role and the payment
    simulator in processes of their own; the spans of each land in the one capture, and the
    ledger the events process writes after its drain matches the database (load_run)."""
    doc = load_run(ecomctl, seeded, tmp_path / "out.json", "--profile", "mixed", "--users", "8",
                   "--spawn-rate", "8", "--duration", "15s", "--serve-workers", "2")
    assert doc["config"]["serve_workers"] == 2
    assert doc["totals"]["requests"] > 40 and doc["totals"]["failures"] == 0
    assert len(_serving_instances(Path(doc["trace_file"]))) == 2
    assert doc["trace_context"]["server_spans"] >= 0.95 * doc["totals"]["requests"]


def test_serve_workers_with_an_external_gateway_is_refused(ecomctl: Any) -> None:
    refused = ecomctl("load", "run", "--host", "http://127.0.0.1:9", "--serve-workers", "2",
                      "--no-live")
    assert refused.exit_code == 2 and "--serve-workers" in refused.stderr, refused.stderr


def test_mixed_profile_on_two_workers(ecomctl: Any, seeded: Path, tmp_path: Path) -> None:
    # .ci/run's smoke run: 20 s, so that its ~120 journeys include checkouts (1 in 12) for
    # the smoke gates; 10 s's ~60 now and then had none.
    doc = load_run(ecomctl, seeded, tmp_path / "out.json", "--profile", "mixed", "--users", "10",
                   "--spawn-rate", "10", "--duration", "20s", "--workers", "2")
    totals, endpoints = doc["totals"], doc["endpoints"]
    assert doc["config"]["workers"] == 2 and doc["config"]["profile"] == "mixed"
    assert {"POST /api/users/login", "GET /api/products/{id}",
            "GET /api/products?category", "POST /api/cart/items"} <= set(endpoints)
    assert all(e["count"] > 0 and e["p99_ms"] >= e["p50_ms"] > 0 for e in endpoints.values())
    # Every endpoint's merged histogram holds exactly its count, and the per-process counts
    # add up to the merged totals.
    for endpoint in endpoints.values():
        assert LatencyHistogram.decode(endpoint["hdr"]).count == endpoint["count"]
    workers = doc["processes"]
    assert len(workers) == 2 and all(w["final"] and w["requests"] > 0 for w in workers)
    assert sum(w["requests"] for w in workers) == totals["requests"]
    assert sum(e["count"] for e in endpoints.values()) == totals["requests"] > 50
    assert sum(w["failures"] for w in workers) == totals["failures"]
    assert abs(doc["locust_stats"]["requests"] - totals["requests"]) <= 2  # Locust agrees
    assert totals["rps"] > 5 and set(doc["journeys"]) >= {"browse", "cart"}
    assert "coordinated omission not corrected" in doc["latency_origin"]

    # Server side, from the gateway's own spans.
    operations = {(o["service"], o["name"]) for o in doc["spans"]}
    assert ("product", "product.get") in operations
    assert any(service == "gateway" for service, _ in operations)
    assert doc["cache"]["product"]["requests"] > 0

    # The load requests' traceparent reached the gateway: its server spans continue the
    # trace of the Locust request, whose client span (service loadgen, written by each
    # worker) the run merged into the capture.
    spans = read_file(Path(doc["trace_file"]))
    clients = {s.span_id for s in spans if s.service == "loadgen" and s.kind == "CLIENT"}
    server = [s for s in spans if s.service == "gateway" and s.kind == "SERVER"]
    remote = [s for s in server if s.parent_span_id in clients]
    assert len(remote) >= 0.95 * totals["requests"]
    assert doc["trace_context"]["remote_parent"] == len(remote)
    assert doc["trace_context"]["orphans"] == 0
    # Each endpoint's percentiles link to requests of that endpoint in this run's capture.
    by_id = {s.trace_id: s for s in spans if s.service == "loadgen" and s.kind == "CLIENT"}
    for name, endpoint in endpoints.items():
        linked = [e for rung in endpoint["exemplars"].values() for e in rung]
        assert linked and all(by_id[e["trace_id"]].name == name for e in linked), name

    # The CI gates on this very run: the shipped smoke gates pass, an impossible one breaks
    # the build (exit 3) and says so in a JUnit file that a JUnit parser reads.
    out = tmp_path / "out.json"
    passing = ecomctl("gate", "check", str(out), "--gates", str(SMOKE_GATES))
    assert passing.exit_code == 0, passing.stdout + passing.stderr
    strict = tmp_path / "strict.yaml"
    strict.write_text('version: 1\nendpoints:\n  "GET /api/products/{id}": {p50: "< 1us"}\n'
                      'invariants: hold\n')
    junit = tmp_path / "gates.xml"
    failing = ecomctl("gate", "check", str(out), "--gates", str(strict), "--junit", str(junit))
    assert failing.exit_code == 3, failing.stdout + failing.stderr
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    assert (suite.tests, suite.failures) == (8, 1)  # 1 endpoint + 7 invariants


def test_constant_rate_profile_measures_from_the_intended_start(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    doc = load_run(ecomctl, seeded, tmp_path / "rate.json", "--profile", "constant-rate",
                   "--users", "5", "--spawn-rate", "5", "--rate", "10", "--duration", "8s")
    assert doc["latency_origin"].startswith("intended start")
    assert "coordinated omission corrected" in doc["latency_origin"]
    assert doc["config"]["pacing_s"] == 0.5 and doc["config"]["arrival_rate_per_s"] == 10.0
    journeys = doc["totals"]["journeys"]
    assert 35 <= journeys <= 90  # about 10 per second once the users have logged in


def test_a_user_behind_schedule_is_charged_for_the_wait(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    locustfile = tmp_path / "slow.py"
    locustfile.write_text(SLOW_LOCUSTFILE)
    doc = load_run(ecomctl, seeded, tmp_path / "slow.json", "--locustfile", str(locustfile),
                   "--users", "4", "--spawn-rate", "4", "--duration", "6s",
                   env={"ECOMCTL_LOAD_PACING_S": "0.1"})
    assert doc["latency_origin"].startswith("intended start")
    # The product page answers in milliseconds on the server...
    served = next(o for o in doc["spans"] if o["name"] == "product.get")
    assert served["p50_ms"] < 100
    # ...but journey k starts about 0.2 k seconds late, and its request is charged for that.
    product = doc["endpoints"]["GET /api/products/{id}"]
    assert product["p50_ms"] > 500 and product["max_ms"] > 1_500
    assert doc["journeys"]["slow"]["p50_ms"] > product["p50_ms"] + 250


def test_stale_credentials_are_refused_before_any_load(ecomctl: Any, tmp_path: Path) -> None:
    stale = tmp_path / "stale.json"
    stale.write_text(json.dumps({"version": 1, "seed": 1, "shoppers": [
        {"user_id": 999_999_999, "email": "gone@example.test", "password": "x"}]}))
    result = ecomctl("load", "run", "--profile", "mixed", "--duration", "5s", "--no-live",
                     "--credentials", str(stale))
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "1 of 1 shoppers are not in the shop's database" in result.stderr


def test_locust_options_pass_through_and_ecomctls_own_are_refused(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "locust"
    load_run(ecomctl, seeded, tmp_path / "through.json", "--profile", "browse", "--users", "2",
             "--spawn-rate", "2", "--duration", "4s", "--", "--csv", str(csv))
    stats = (tmp_path / "locust_stats.csv").read_text()
    assert stats.startswith("Type,Name") and "/api/products" in stats  # Locust wrote it
    refused = ecomctl("load", "run", "--no-live", "--credentials", str(seeded), "--",
                      "--users", "5", "--tags", "checkout")
    assert refused.exit_code == 2 and "--users: set by ecomctl" in refused.stderr


# Every journey asks for a product that does not exist: each request fails (404).
FAILING_LOCUSTFILE = """
from locust import task
from shop import ShopUser


class LostShopper(ShopUser):
    @task
    def missing(self):
        self.run_journey("missing", lambda user: user.view_product(987654321))
"""


def test_failed_requests_fail_the_run_unless_tolerated(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    """Like Locust: any failed request exits 1; --max-error-rate raises the bar."""
    locustfile = tmp_path / "failing.py"
    locustfile.write_text(FAILING_LOCUSTFILE)
    args = ("load", "run", "--no-live", "--credentials", str(seeded), "--locustfile",
            str(locustfile), "--users", "1", "--spawn-rate", "1", "--duration", "3s")
    env = {"ECOMCTL_TRACE_DIR": str(tmp_path / "traces")}
    failing = ecomctl(*args, "--out", str(tmp_path / "fail.json"), env=env, timeout=240)
    assert failing.exit_code == 1, failing.stdout[-2000:] + failing.stderr[-2000:]
    assert "> --max-error-rate 0.00%" in failing.stderr
    document = json.loads((tmp_path / "fail.json").read_text())
    assert document["ok"] is True  # the shop is fine: the requests were wrong
    assert document["totals"]["failures"] > 0 and document["totals"]["error_rate"] > 0
    tolerated = ecomctl(*args, "--max-error-rate", "1", env=env, timeout=240)
    assert tolerated.exit_code == 0, tolerated.stdout[-2000:] + tolerated.stderr[-2000:]


def test_sigterm_stops_a_load_run_and_every_process_it_started(
    seeded: Path, tmp_path: Path
) -> None:
    """A CI runner cancelling a job sends SIGTERM to ecomctl alone. The gateway and Locust
    run in sessions of their own, so nothing else reaches them: ecomctl must stop them, and
    say it was terminated (143), not interrupted (130) or done (0)."""
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        child = subprocess.Popen(
            [*ecomctl_command(), "load", "run", "--profile", "browse", "--users", "2",
             "--duration", "60s", "--no-live", "--credentials", str(seeded)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
        started: list[psutil.Process] = []
        try:
            deadline = time.monotonic() + 120
            while "running Locust" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(2)  # Locust is up and sending
            started = psutil.Process(child.pid).children(recursive=True)
            names = " ".join(" ".join(p.cmdline()) for p in started)
            assert "serve" in names and "locust" in names, names
            child.send_signal(signal.SIGTERM)
            code = child.wait(timeout=90)
        finally:
            if child.poll() is None:
                child.kill()
    _, alive = psutil.wait_procs(started, timeout=30)
    assert code == 143, log.read_text()[-2000:]
    assert not alive, [" ".join(p.cmdline()) for p in alive]


def test_web_serves_locusts_own_ui_during_the_run_and_the_result_is_still_written(
    seeded: Path, tmp_path: Path
) -> None:
    out, log, port = tmp_path / "web.json", tmp_path / "stderr.log", free_port()
    with log.open("w") as stderr:
        child = subprocess.Popen(
            [*ecomctl_command(), "load", "run", "--profile", "browse", "--users", "3",
             "--spawn-rate", "3", "--duration", "12s", "--no-live", "--credentials",
             str(seeded), "--web", "--web-port", str(port), "--out", str(out)],
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
        try:
            page, requests_seen = "", 0
            deadline = time.monotonic() + 120
            while child.poll() is None and time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as ui:
                        page = ui.read().decode()
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats/requests",
                                                timeout=5) as stats:
                        requests_seen = max(requests_seen, sum(
                            row["num_requests"] for row in json.loads(stats.read())["stats"]
                            if row["name"] != "Aggregated"))
                except OSError:
                    pass  # not listening yet, or gone
                time.sleep(0.5)
            code = child.wait(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
    assert code == 0, log.read_text()[-3000:]
    assert "locust" in page.lower() and requests_seen > 0, (page[:500], requests_seen)
    assert f"Locust's web UI: http://127.0.0.1:{port}" in log.read_text()
    document = json.loads(out.read_text())
    assert document["totals"]["requests"] >= requests_seen and document["ok"] is True
    with socket.socket() as probe:  # it quit with the run: the port is free again
        assert probe.connect_ex(("127.0.0.1", port)) != 0
