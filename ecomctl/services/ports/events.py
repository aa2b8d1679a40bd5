"""What the event consumers' handlers need: the transaction the consumer runner opened for
an event (opaque here), and the stores that write in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol
from uuid import UUID


class Transaction(Protocol):
    """The open transaction in which the consumer runner records an event as processed
    (``adapters/kafka/consumer``). A handler never looks inside it: it only hands it to the
    ports that must write in that same transaction, so redelivery stays harmless."""


class AnalyticsStore(Protocol):
    async def add(self, tx: Transaction, counts: Mapping[str, int]) -> None:
        """Add ``counts`` to the named counters, inside ``tx``."""
        ...

    async def add_new(
        self, tx: Transaction, consumer: str, event_ids: Sequence[UUID],
        counts: Sequence[tuple[UUID, str, int]],
    ) -> set[UUID]:
        """Mark ``event_ids`` (each once) as processed by ``consumer`` and add the ``(event
        id, counter, value)`` counts of those it had not processed yet, in one atomic step;
        return the ids that were new. ``tx`` may be a bare connection: the step is one
        statement."""
        ...
