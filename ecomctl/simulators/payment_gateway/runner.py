"""Serving a simulator in-process: uvicorn in a background task of the running event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ecomctl.adapters.asgi_server import ServedAddress, serving
from ecomctl.errors import ConfigError, ServerStartError
from ecomctl.simulators.payment_gateway.app import PaymentGatewaySimulator
from ecomctl.simulators.payment_gateway.config import SimulatorConfig

SimulatorStartError = ServerStartError  # the name the simulator's callers know


@dataclass(frozen=True)
class RunningGateway(ServedAddress):
    """A simulator being served: where to reach it (``url``), and the simulator to
    reconfigure."""

    simulator: PaymentGatewaySimulator = field(kw_only=True)


@contextlib.asynccontextmanager
async def run_payment_gateway(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    simulator: PaymentGatewaySimulator | None = None,
    startup_timeout_s: float = 10.0,
    shutdown_timeout_s: float = 5.0,
) -> AsyncIterator[RunningGateway]:
    """Serve a simulator with uvicorn in a background task of the running event loop.

    ``port=0`` picks a free port (read it from ``.port`` / ``.url``). Pass either a
    ``config`` or a ready ``simulator``. Leaving the block stops the server; requests that
    are simulating a timeout are answered at once, so it does not wait for timeout_delay_s.
    """
    if simulator is not None and config is not None:
        raise ConfigError("pass either a config or a simulator, not both")
    if simulator is None:
        simulator = PaymentGatewaySimulator(config)
    simulator._server_starting()
    async with serving(
        simulator, name="payment gateway", host=host, port=port,
        before_stop=simulator._server_stopping, startup_timeout_s=startup_timeout_s,
        shutdown_timeout_s=shutdown_timeout_s,
    ) as address:
        yield RunningGateway(host, address.port, simulator=simulator)
