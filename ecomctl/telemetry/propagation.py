"""The propagators ``OTEL_PROPAGATORS`` names, built from the installed packages' entry points
(``Settings`` has checked that each is installed).

The shop sets them as the global text map (``Telemetry.activate``), which every inject and
extract goes through: the gateway's server spans (FastAPI), the httpx and aiokafka
instrumentations, the outbox (``adapters/postgres/outbox.py``), the relay, the consumers and
the dead letters (``adapters/kafka``). Locust's request spans inject with the same ones
(``loadgen.py``).
"""

from __future__ import annotations

from importlib.metadata import entry_points

from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.propagators.textmap import TextMapPropagator

from ecomctl.config import Settings


def propagator_from(settings: Settings) -> TextMapPropagator:
    """``settings.propagators`` as one composite propagator (none: one that does nothing)."""
    available = {e.name: e for e in entry_points(group="opentelemetry_propagator")}
    return CompositePropagator([available[name].load()() for name in settings.propagators])
