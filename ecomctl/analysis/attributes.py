"""Span attributes under their current and their deprecated semantic-convention names.

ecomctl's spans carry the current names (``telemetry/semconv.py``); older captures, other
services' spans and instrumentations without the opt-in carry the deprecated ones. Whatever
reads span attributes by name (the gates' selectors and ``attr`` assertions; the detectors
spell out both names) finds an attribute under either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RENAMED: Mapping[str, str] = {
    "db.statement": "db.query.text",
    "db.system": "db.system.name",
    "db.name": "db.namespace",
    "db.operation": "db.operation.name",
    "net.peer.name": "server.address",
    "net.peer.port": "server.port",
    "net.transport": "network.transport",
    "http.method": "http.request.method",
    "http.url": "url.full",
    "http.status_code": "http.response.status_code",
    "messaging.kafka.message.offset": "messaging.kafka.offset",
    "messaging.operation": "messaging.operation.type",
}
"""Deprecated name -> current name, for the attributes the shop's instrumentations write (a
test checks each pair against the semantic-conventions package)."""
_OTHER_NAME = {**RENAMED, **{new: old for old, new in RENAMED.items()}}


def other_name(key: str) -> str | None:
    """The current name of a deprecated attribute, the deprecated name of a current one."""
    return _OTHER_NAME.get(key)


def attribute(attributes: Mapping[str, Any], key: str) -> Any:
    """``attributes[key]``, else the same attribute under its other name, else None."""
    value = attributes.get(key)
    if value is None and (other := _OTHER_NAME.get(key)) is not None:
        value = attributes.get(other)
    return value
