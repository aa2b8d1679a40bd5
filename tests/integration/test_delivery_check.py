"""The exactly-once check after a run (``ecomctl.sim.delivery``) on the real database: an
event written before the last drain began and never consumed is lost; one written after it
is on its way (the carrier keeps writing after a run) and is not judged yet."""

from __future__ import annotations

import uuid

from ecomctl.bootstrap import ShopStack
from ecomctl.sim.delivery import ConsumerGroup, baseline, check_delivery, database_now


async def test_only_events_written_before_the_drain_began_are_judged(shop: ShopStack) -> None:
    # Published already (the relay leaves these rows alone), on a topic only this test reads.
    topic = f"delivery-check-{uuid.uuid4().hex[:8]}"
    group = ConsumerGroup(f"delivery-check-{uuid.uuid4().hex[:8]}", [topic], 0)

    async def event(*, consumed: bool) -> None:
        event_id = uuid.uuid4()
        async with shop.db.transaction() as conn:
            await conn.execute(
                "INSERT INTO outbox (event_id, topic, event_type, aggregate_type, aggregate_id,"
                " payload, published_at) VALUES ($1, $2, 'test.event', 'test', '1', '{}', now())",
                event_id, topic)
            if consumed:
                await conn.execute("INSERT INTO processed_events (consumer, event_id) "
                                   "VALUES ($1, $2)", group.name, event_id)

    start = await baseline(shop.db)
    try:
        await event(consumed=True)
        await event(consumed=False)  # lost
        drain_began = await database_now(shop.db)
        await event(consumed=False)  # still on its way when the check runs
        result, figures = await check_delivery(shop.db, start, [group], drain_began)
        assert not result.ok
        assert (figures["consumed"][group.name], figures["lost"][group.name]) == (1, 1)
        assert f"lost: 1 by {group.name}" in result.detail

        now = await database_now(shop.db)  # a later check judges the third one too
        _, figures = await check_delivery(shop.db, start, [group], now)
        assert figures["lost"][group.name] == 2
    finally:
        async with shop.db.transaction() as conn:
            await conn.execute("DELETE FROM processed_events WHERE consumer = $1", group.name)
            await conn.execute("DELETE FROM outbox WHERE topic = $1", topic)
