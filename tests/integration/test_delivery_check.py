"""The exactly-once check after a run (``ecomctl.sim.delivery``) on the real database: an
event written before the last drain began and never consumed is lost; one written after it
is on its way (the carrier keeps writing after a run) and is not judged yet."""

from __future__ import annotations

import uuid

from ecomctl.adapters.postgres.analytics import PostgresAnalytics
from ecomctl.bootstrap import ShopStack
from ecomctl.sim.delivery import ANALYTICS, ConsumerGroup, baseline, check_delivery, database_now


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


async def test_analytics_work_straddling_the_baseline_counts_once_and_a_double_apply_is_caught(
    shop: ShopStack,
) -> None:
    """The analytics consumer adds to a counter and records the event processed in one
    transaction. One that began before the baseline and committed after it (CI saw such work
    while the carrier kept delivering) is counted on both sides or neither; a counter that
    grew with no record (an event applied twice) is still found."""
    topic = f"delivery-check-{uuid.uuid4().hex[:8]}"
    event_type = f"test.straddle-{uuid.uuid4().hex[:8]}"
    counter = f"events.{event_type}"
    event_id = uuid.uuid4()
    async with shop.db.transaction() as conn:
        await conn.execute(
            "INSERT INTO outbox (event_id, topic, event_type, aggregate_type, aggregate_id,"
            " payload, published_at) VALUES ($1, $2, $3, 'test', '1', '{}', now())",
            event_id, topic, event_type)
    analytics = ConsumerGroup(ANALYTICS, [topic], 0)
    try:
        async with shop.db.transaction() as consumer_tx:
            await consumer_tx.execute("SELECT 1")  # begun: its processed_at is now()
            start = await baseline(shop.db)  # taken while the consumer's work is open
            await consumer_tx.execute("INSERT INTO processed_events (consumer, event_id) "
                                      "VALUES ($1, $2)", ANALYTICS, event_id)
            await PostgresAnalytics().add(consumer_tx, {counter: 1})
        result, figures = await check_delivery(shop.db, start, [analytics],
                                               await database_now(shop.db))
        assert event_type not in figures["analytics_miscounted"], figures

        async with shop.db.transaction() as conn:  # applied again, with no record of it
            await PostgresAnalytics().add(conn, {counter: 1})
        result, figures = await check_delivery(shop.db, start, [analytics],
                                               await database_now(shop.db))
        assert not result.ok
        assert figures["analytics_miscounted"][event_type] == 1
    finally:
        async with shop.db.transaction() as conn:
            await conn.execute("DELETE FROM processed_events WHERE event_id = $1", event_id)
            await conn.execute("DELETE FROM outbox WHERE topic = $1", topic)
            await conn.execute("DELETE FROM analytics_counters WHERE name = $1", counter)
