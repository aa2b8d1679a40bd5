"""The HTTP side of Idempotency-Key (services/idempotency has the rules): the request's
fingerprint, the business refusals that are kept and replayed, and the replay header."""

import json
from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse

from ecomctl.errors import DomainError, error_code
from ecomctl.gateway.errors import domain_status
from ecomctl.services.idempotency import IdempotencyService, fingerprint
from ecomctl.services.ports.idempotency import StoredResponse

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def _kept_refusal(exc: Exception) -> StoredResponse | None:
    """A business refusal is the request's answer and is replayed like a success (as the
    error handler renders it); anything else, and a refusal for now only (another request
    is paying the order: ``retryable``), leaves the key free for a retry."""
    if isinstance(exc, DomainError) and not exc.retryable:
        return StoredResponse(domain_status(exc), {"error": error_code(exc), "message": str(exc)})
    return None


async def idempotent(
    service: IdempotencyService, user_id: int, key: str | None, route: str, body: str,
    handle: Callable[[], Awaitable[JSONResponse]],
) -> JSONResponse:
    """``handle()`` once per (user, key); without a key, every call runs."""
    if key is None:
        return await handle()

    async def operation() -> StoredResponse:
        response = await handle()
        return StoredResponse(response.status_code, json.loads(bytes(response.body)))

    outcome = await service.run(user_id, key, fingerprint("POST", route, body), operation,
                                _kept_refusal)
    headers = {REPLAYED_HEADER: "true"} if outcome.replayed else None
    return JSONResponse(outcome.response.body, status_code=outcome.response.status,
                        headers=headers)
