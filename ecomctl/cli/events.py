"""``ecomctl events``: the Kafka events' dead letters (``events dlq list|replay``).

Exit codes: 0 ok, 1 Kafka unreachable or failing, 2 a bad option (or no dead letter at the
offset asked for).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from ecomctl.cli.help import Typer, examples
from ecomctl.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from ecomctl.adapters.kafka.dlq import DeadLetter
    from ecomctl.config import Settings

app = Typer(
    help=(
        "The shop's Kafka events: the records the consumers gave up on.\n\nA consumer that "
        "cannot process a record (undecodable, "
        "refused for good such as an Elasticsearch mapping rejection, or still failing after "
        "its attempts) writes it to [bold]<topic>.dlq[/bold] and carries on; "
        "[bold]events dlq list[/bold] shows those records and [bold]events dlq replay[/bold] "
        "sends them back once the cause is fixed."
    ),
    no_args_is_help=True,
)
dlq_app = Typer(
    help=(
        "Dead letters: the records the consumers gave up on.\n\nOne .dlq topic per source "
        "topic (with ECOMCTL_KAFKA_TOPIC_PREFIX before it). Each keeps the original key, value, "
        "headers and trace context, plus why (error type and message), where from (topic, "
        "partition, offset, consumer group), how many attempts and when."
    ),
    no_args_is_help=True,
)
app.add_typer(dlq_app, name="dlq")

TOPIC_HELP = ("A source topic or its .dlq (order-events, order-events.dlq); the topic prefix "
              "is added when missing. Default: every shop topic's DLQ.")


def _settings() -> Settings:
    from ecomctl.config import Settings

    return Settings.from_env()


def _bootstrap(settings: Settings) -> str:
    return ",".join(settings.kafka_bootstrap_servers)


@dlq_app.command("list", epilog=examples(
    "ecomctl events dlq list",
    "ecomctl events dlq list --topic product-events --json",
))
def list_dead_letters(
    topic: str = typer.Option(None, "--topic", "-t", metavar="TOPIC", help=TOPIC_HELP),
    limit: int = typer.Option(50, "--limit", "-n", min=0, metavar="N",
                              help="At most this many, the most recent (0: all)."),
    json_output: bool = typer.Option(False, "--json", help="Print the records as JSON."),
) -> None:
    """List the dead letters, oldest first.

    One row each: DLQ topic, partition and offset, the source topic and offset, the
    consumer group, the event type, the error, the attempts, when, and whether it was
    replayed. --json adds the event id, the key and the traceparent."""
    import asyncio

    from ecomctl.adapters.kafka.dlq import read_dead_letters, resolve_dlq_topic, shop_dlq_topics

    settings = _settings()
    prefix = settings.kafka_topic_prefix
    topics = [resolve_dlq_topic(topic, prefix)] if topic else shop_dlq_topics(prefix)
    letters = asyncio.run(read_dead_letters(_bootstrap(settings), topics,
                                            limit=limit or None))
    if json_output:
        print_json({"topics": topics, "dead_letters": [d.to_dict() for d in letters]})
        return
    if not letters:
        console.print(f"no dead letters on {', '.join(topics)}")
        return
    console.print(_table(letters, f"dead letters ({len(letters)})"))


@dlq_app.command("replay", epilog=examples(
    "ecomctl events dlq replay --topic product-events --offset 3",
    "ecomctl events dlq replay --all",
))
def replay(
    topic: str = typer.Option(None, "--topic", "-t", metavar="TOPIC", help=TOPIC_HELP),
    offset: list[int] = typer.Option(None, "--offset", min=0, metavar="OFFSET",
                                     help="The DLQ offset to replay (repeatable; see `list`)."),
    partition: int = typer.Option(None, "--partition", min=0, metavar="N",
                                  help="With --offset: the DLQ partition (a DLQ has one)."),
    all_records: bool = typer.Option(False, "--all", help="Replay every dead letter not "
                                     "replayed yet."),
    json_output: bool = typer.Option(False, "--json", help="Print what was done as JSON."),
) -> None:
    """Send dead letters back to their source topic, once the cause is fixed.

    Each goes with its original key, value and trace context, plus a dlq.replay.of header.
    A dead letter is replayed at most once (recorded as the consumer group
    ecomctl-dlq-replay on the DLQ); a replayed event that had in fact been processed is
    absorbed by the consumers' idempotency (processed_events)."""
    import asyncio

    from ecomctl.adapters.kafka.dlq import (
        ReplayReport,
        replay_dead_letters,
        resolve_dlq_topic,
        shop_dlq_topics,
    )

    if bool(offset) == all_records:
        raise typer.BadParameter("give --offset O (with --topic) or --all, not both")
    if offset and not topic:
        raise typer.BadParameter("--offset needs --topic (offsets are per DLQ topic)")
    if partition is not None and not offset:
        raise typer.BadParameter("--partition goes with --offset")
    settings = _settings()
    prefix = settings.kafka_topic_prefix
    topics = [resolve_dlq_topic(topic, prefix)] if topic else shop_dlq_topics(prefix)

    async def run() -> list[ReplayReport]:
        return [await replay_dead_letters(_bootstrap(settings), name,
                                          offsets=list(offset) if offset else None,
                                          partition=partition)
                for name in topics]

    reports = asyncio.run(run())
    replayed = [d for r in reports for d in r.replayed]
    skipped = [d for r in reports for d in r.already_replayed]
    if json_output:
        print_json({"topics": topics, "replayed": [d.to_dict() for d in replayed],
                    "already_replayed": [d.to_dict() for d in skipped]})
        return
    if replayed:
        console.print(_table(replayed, f"replayed ({len(replayed)})"))
    else:
        console.print("nothing to replay")
    if skipped:
        err_console.print(f"[yellow]{len(skipped)} already replayed, not sent again:[/yellow] "
                          + ", ".join(escape(d.address) for d in skipped))


def _table(letters: list[DeadLetter], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("dlq topic", "part", "offset", "source", "group", "event type"):
        table.add_column(column, overflow="fold")
    table.add_column("error", overflow="fold", ratio=3)
    for column in ("attempts", "time", "replayed"):
        table.add_column(column, no_wrap=True)
    for letter in letters:
        row: dict[str, Any] = letter.to_dict()
        error = f"{row['error_type'] or '?'}: {row['error_message'] or ''}"
        table.add_row(
            escape(letter.topic), str(letter.partition), str(letter.offset),
            escape(f"{row['source_topic']}[{row['source_partition']}]@{row['source_offset']}"),
            escape(row["group"] or "-"), escape(row["event_type"] or "-"),
            escape(error[:120]), str(row["attempts"] or "-"),
            escape(str(row["dead_lettered_at"])[:19]), "yes" if letter.replayed else "no",
        )
    return table
