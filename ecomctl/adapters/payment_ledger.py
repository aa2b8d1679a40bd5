"""The payment gateway's books, as ``GET /v1/ledger`` returns them: what the business
invariants hold our database against (``ecomctl.sim.invariants``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from ecomctl.errors import BackendUnavailable


@dataclass(frozen=True)
class GatewayLedger:
    """The payment gateway's books: every capture and every refund since ``since``
    (``GET /v1/ledger``)."""

    since: datetime
    captures: Sequence[Mapping[str, Any]]
    refunds: Sequence[Mapping[str, Any]] = ()

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> GatewayLedger:
        return cls(datetime.fromisoformat(body["since"]), list(body["captures"]),
                   list(body.get("refunds", ())))

    def to_json(self) -> dict[str, Any]:
        return {"since": self.since.isoformat(), "captures": list(self.captures),
                "refunds": list(self.refunds)}

    def net_by_order(self) -> dict[UUID, Decimal]:
        """What the gateway kept per order: its captures less their refunds."""
        net: dict[UUID, Decimal] = {}
        for entry, sign in [*((c, 1) for c in self.captures), *((r, -1) for r in self.refunds)]:
            order = UUID(str(entry["order_id"]))
            net[order] = net.get(order, Decimal("0")) + sign * Decimal(str(entry["amount"]))
        return net


async def fetch_ledger(gateway_url: str) -> GatewayLedger:
    """``GET /v1/ledger`` of a running payment gateway (simulator)."""
    import httpx

    try:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=10) as client:
            response = await client.get("/v1/ledger")
            response.raise_for_status()
    except httpx.HTTPError as exc:
        raise BackendUnavailable("payment-gateway", f"cannot read its ledger: {exc}") from exc
    return GatewayLedger.from_json(response.json())
