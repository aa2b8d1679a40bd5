"""What the event consumers' handlers need: the transaction the consumer runner opened for
an event (opaque here), and the stores that write in it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class Transaction(Protocol):
    """The open transaction in which the consumer runner records an event as processed
    (``adapters/kafka/consumer``). A handler never looks inside it: it only hands it to the
    ports that must write in that same transaction, so redelivery stays harmless."""


class AnalyticsStore(Protocol):
    async def add(self, tx: Transaction, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to the named counters, inside ``tx``."""
        ...
