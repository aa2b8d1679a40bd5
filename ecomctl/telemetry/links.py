"""Addresses a person opens: a trace in the trace UI, the live metrics dashboard."""

from __future__ import annotations

from urllib.parse import quote

from ecomctl.config import Settings
from ecomctl.telemetry.dashboard import CONSOLE


def trace_url(settings: Settings, trace_id: str) -> str:
    """The trace's page in the trace UI (Zipkin's Lens: waterfall, span attributes)."""
    return f"{settings.trace_ui_url}/traces/{quote(trace_id, safe='')}"


def trace_ui_url(settings: Settings) -> str:
    """The trace UI's search page."""
    return f"{settings.trace_ui_url}/"


def dashboard_url(settings: Settings) -> str:
    """The shop's live dashboard (a Prometheus console page), the last 15 minutes."""
    return f"{settings.metrics_url}/consoles/{CONSOLE}"
