"""Which service is running right now, so client spans (SQL, Redis, Kafka, HTTP) can be
attributed to the service that issued them although all services share one process."""

from __future__ import annotations

from contextvars import ContextVar

DEFAULT_SERVICE = "gateway"
current_service: ContextVar[str] = ContextVar("ecomctl_current_service", default=DEFAULT_SERVICE)
