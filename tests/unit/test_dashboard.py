"""The live dashboard's definition (telemetry/dashboard) and the Prometheus console page and
Grafana dashboard made from it. Its queries against a live Prometheus: e2e/test_watch_live."""

from __future__ import annotations

import json
import re

from ecomctl.resources import fixtures_dir
from ecomctl.stack.backends.jaeger import CONTAINER_PORTS, jaeger_config
from ecomctl.stack.backends.prometheus import console_page, prometheus_config
from ecomctl.telemetry.dashboard import PANELS, WINDOW, grafana_dashboard


def test_every_panel_is_on_the_console_page_once_with_its_query() -> None:
    page = console_page()
    for panel in PANELS:
        assert page.count(f'id="panel-{panel.key}"') == 1, panel.key
        assert json.dumps(panel.expr) in page, panel.key  # as a JS string or a Go string
    # Go template actions are only the ones the page means (a JSON "}}" would be one).
    actions = re.findall(r"\{\{.*?\}\}", page)
    assert {a.split()[1] for a in actions} <= {"template", "range", ".Labels.ecom_service",
                                               ".Labels.ecom_cache_level", ".Value",
                                               "else", "end"}, actions


def test_charts_look_at_a_short_window_and_tables_at_totals() -> None:
    for panel in PANELS:
        if panel.table:
            assert "rate(" not in panel.expr, panel.key
        else:
            assert f"[{WINDOW}]" in panel.expr or "rate(" not in panel.expr, panel.key
    keys = [p.key for p in PANELS]
    assert len(set(keys)) == len(keys)


def test_the_grafana_dashboard_in_compose_is_the_same_dashboard() -> None:
    shipped = json.loads((fixtures_dir() / "compose" / "grafana" / "ecomctl.json").read_text())
    assert shipped == grafana_dashboard(), (
        "regenerate it: .venv/bin/python -c 'import json; from ecomctl.telemetry.dashboard "
        "import grafana_dashboard as g; print(json.dumps(g(), indent=2))' > "
        "fixtures/compose/grafana/ecomctl.json")
    targets = [t["expr"] for p in shipped["panels"] for t in p["targets"]]
    assert targets == [p.expr for p in PANELS]


def test_compose_runs_the_collector_and_prometheus_as_the_local_stack_does() -> None:
    compose = fixtures_dir() / "compose"
    jaeger = jaeger_config(host="0.0.0.0", data="/badger", kafka="kafka:29092",
                           ports=CONTAINER_PORTS)
    assert (compose / "jaeger.yaml").read_text().split("\n", 1)[1] == jaeger
    assert (compose / "prometheus.yml").read_text().split("\n", 1)[1] == (
        prometheus_config("jaeger:8889"))
