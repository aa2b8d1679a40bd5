"""Fault flags: switches the services read on every call, so a simulation can make one part
of the shop misbehave the way it would in production (like the OpenTelemetry Demo's feature
flags). All off by default; flipping one never needs a restart."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FaultFlags:
    failing_product_ids: frozenset[int] = field(default_factory=frozenset)
    """The catalogue fails (503) whenever one of these products is read."""
    slow_query_ms: int = 0
    """Extra server-side time (``pg_sleep``) in the stock reservation statement's transaction."""
    shipping_delay_ms: int = 0
    """Time the carrier takes to book a shipment (slows the shipment consumer)."""
