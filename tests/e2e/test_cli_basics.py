from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ecomctl.config import LOCAL_PORTS, Settings

BACKENDS = {"postgres", "redis", "redis-cache", "kafka", "elasticsearch", "jaeger", "zipkin",
            "prometheus"}


def test_stack_status_json_reports_every_backend_healthy(ecomctl: Any) -> None:
    result = ecomctl("stack", "status", "--json")
    assert result.exit_code == 0, result.stderr
    statuses = {s["name"]: s for s in result.json()}
    assert set(statuses) == BACKENDS
    for name, status in statuses.items():
        assert status["healthy"] and status["running"], (name, status["detail"])
        assert status["pid"] > 0 and status["rss_bytes"] > 0, name
        assert status["version"], name
    assert statuses["postgres"]["port"] == LOCAL_PORTS.postgres
    assert statuses["kafka"]["version"].startswith("4.")
    assert statuses["elasticsearch"]["version"].startswith("9.")
    assert statuses["zipkin"]["port"] == LOCAL_PORTS.trace_ui
    assert statuses["prometheus"]["version"].startswith("2.")


def test_doctor_is_green_through_the_product_clients(ecomctl: Any) -> None:
    result = ecomctl("doctor", "--json")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = result.json()
    assert report["ok"] is True
    assert {c["backend"] for c in report["checks"]} == {
        "postgres", "redis", "redis-cache", "kafka", "elasticsearch", "traces",
    }
    assert all(c["ok"] for c in report["checks"])


def test_doctor_table_for_humans(ecomctl: Any) -> None:
    result = ecomctl("doctor")
    assert result.exit_code == 0, result.stderr
    for name in ("postgres", "redis", "kafka", "elasticsearch", "traces"):
        assert name in result.stdout


async def test_db_migrate_applies_once_then_is_a_no_op(ecomctl: Any, settings: Settings) -> None:
    database = f"ecomctl_e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(settings.database_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    url = settings.database_url.rsplit("/", 1)[0] + f"/{database}"
    try:
        first = ecomctl("db", "migrate", "--json", env={"DATABASE_URL": url})
        assert first.exit_code == 0, first.stderr
        assert first.json()["applied"] == [
            "0001_catalogue_and_users", "0002_orders_payments_shipments",
            "0003_outbox_and_consumers", "0004_analytics_counters",
            "0005_payment_states_reservations_idempotency", "0006_payment_leases_refunds",
        ]
        second = ecomctl("db", "migrate", "--json", env={"DATABASE_URL": url})
        assert second.exit_code == 0, second.stderr
        assert second.json() == {"applied": [], "already_applied": 6, "latest_version": 6}
        conn = await asyncpg.connect(url)
        try:
            recorded = await conn.fetchval("SELECT count(*) FROM schema_migrations")
            tables = await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        assert recorded == 6
        assert tables >= 14
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def test_stack_env_prints_evaluable_exports(ecomctl: Any) -> None:
    result = ecomctl("stack", "env")
    assert result.exit_code == 0
    shown = subprocess.run(
        ["bash", "-c", result.stdout + "\nenv"], capture_output=True, text=True, check=True
    ).stdout
    for name in (
        "DATABASE_URL", "REDIS_URL", "REDIS_CACHE_URL", "KAFKA_BOOTSTRAP_SERVERS",
        "ELASTICSEARCH_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "ECOMCTL_TRACE_QUERY_URL",
    ):
        assert f"{name}=" in shown, name
    assert f"127.0.0.1:{LOCAL_PORTS.postgres}" in shown


def test_bad_configuration_exits_2_with_the_variable_named(ecomctl: Any) -> None:
    result = ecomctl("doctor", env={"DATABASE_URL": "mysql://shop"})
    assert result.exit_code == 2
    assert "DATABASE_URL" in result.stderr


@pytest.mark.parametrize("sampler", ["traceidratio", "ParentBased_TraceIdRatio"])
def test_a_sampling_ratio_out_of_range_exits_2_in_one_line(ecomctl: Any, sampler: str) -> None:
    result = ecomctl("checkout", "simulate", "--shoppers", "1", "--duration", "1s",
                     env={"OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": "2"})
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert "OTEL_TRACES_SAMPLER_ARG='2'" in " ".join(lines) and "Traceback" not in result.stderr
    assert len(lines) <= 2  # one message (rich may wrap it at the terminal's width)


def test_unknown_backend_name_is_a_usage_error(ecomctl: Any) -> None:
    result = ecomctl("stack", "logs", "mongodb")
    assert result.exit_code == 2
    assert "unknown backend" in result.stderr


def test_logs_show_the_backend_output(ecomctl: Any) -> None:
    result = ecomctl("stack", "logs", "postgres", "--lines", "1000000")
    assert result.exit_code == 0
    assert "database system is ready to accept connections" in result.stdout


def test_report_refuses_what_it_cannot_render(ecomctl: Any, tmp_path: Path) -> None:
    load = tmp_path / "load.json"
    load.write_text('{"schema": "ecomctl.result/v1", "kind": "load-run"}')
    refused = ecomctl("report", str(load))
    assert refused.exit_code == 2 and "load.json: started_at: missing" in refused.stderr
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"schema": "ecomctl.result/v1", "kind": "load-walk"}')
    refused = ecomctl("report", str(unknown))
    assert refused.exit_code == 2 and "'load-walk' is not a kind" in refused.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    assert ecomctl("report", str(garbage)).exit_code == 2
    assert ecomctl("report", str(tmp_path / "missing.json")).exit_code == 2


def test_json_prints_the_result_on_stdout_and_out_writes_it(
    ecomctl: Any, seeded: Path, tmp_path: Path
) -> None:
    """`--json` means one thing everywhere: the result on stdout, nothing else there (so it
    pipes into jq); the report is not printed and progress stays on stderr."""
    out = tmp_path / "result.json"
    result = ecomctl("checkout", "simulate", "--json", "--out", str(out), "--credentials",
                     str(seeded), "--shoppers", "2", "--sessions", "10", "--no-live",
                     "--trace-file", str(tmp_path / "spans.otlp.jsonl"))
    assert result.exit_code == 0, result.stdout[-2000:] + result.stderr[-2000:]
    printed = json.loads(result.stdout)  # the whole of stdout is one JSON document
    assert printed["schema"] == "ecomctl.result/v1" and printed["kind"] == "checkout-simulate"
    assert printed["totals"]["journeys"] == 10
    assert json.loads(out.read_text()) == printed
    assert f"result written to {out}" in " ".join(result.stderr.split())
    assert "running shoppers" in result.stderr  # progress went to stderr

    human = ecomctl("checkout", "simulate", "-o", str(out), "--credentials", str(seeded),
                    "--shoppers", "2", "--sessions", "4", "--no-live",
                    "--trace-file", str(tmp_path / "spans2.otlp.jsonl"))
    assert human.exit_code == 0, human.stderr[-2000:]
    assert "business invariants" in human.stdout
    assert json.loads(out.read_text())["totals"]["journeys"] == 4

    stale = ecomctl("checkout", "simulate", "--json", str(out))
    assert stale.exit_code == 2 and f"--out {out}" in " ".join(
        stale.stderr.replace("│", " ").split())


def test_ctrl_c_stops_a_simulation_with_exit_130(seeded: Path, tmp_path: Path) -> None:
    """Ctrl-C sends SIGINT to the terminal's whole process group; the shell convention for
    "interrupted" is 128 + SIGINT."""
    import os
    import signal
    import time

    from tests.cli_runner import ecomctl_command

    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        child = subprocess.Popen(
            [*ecomctl_command(), "checkout", "simulate", "--duration", "60s", "--no-live",
             "--shoppers", "2", "--credentials", str(seeded)],
            stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
            # A background child of a non-interactive shell may inherit SIGINT ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 120
            while "running shoppers" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            os.killpg(child.pid, signal.SIGINT)
            code = child.wait(timeout=60)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
    assert code == 130, log.read_text()[-2000:]
