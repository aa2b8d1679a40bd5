"""The sampler ``OTEL_TRACES_SAMPLER`` names, for the shop's processes and the load
generator alike (``Settings`` has checked the name and the ratio)."""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)

from ecomctl.config import Settings


def sampler_from(settings: Settings) -> Sampler:
    """Only the chosen sampler is built: building a ratio sampler with a bad ratio for a
    user who chose another one crashed every command."""
    name, arg = settings.traces_sampler, settings.traces_sampler_arg
    plain = name.removeprefix("parentbased_")
    root: Sampler = (ALWAYS_ON if plain == "always_on" else ALWAYS_OFF if plain == "always_off"
                     else TraceIdRatioBased(float(arg) if arg is not None else 1.0))
    return ParentBased(root) if name.startswith("parentbased_") else root
