"""PostgreSQL's binary COPY format, written from plain Python values.

The seed's generator works in raw values (ints for money in cents, timestamps in Unix
seconds, UUIDs as 128-bit ints; see ``tables.TABLE_KINDS``); this module turns rows of them
into the tuples of a binary COPY stream, with no ``datetime``, ``Decimal`` or ``UUID``
object in between: that is most of what building a row used to cost. It runs in the seed's
worker processes, so the process that talks to PostgreSQL only forwards bytes.

A stream is ``HEADER``, then the tuples, then ``TRAILER``
(https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from struct import Struct
from typing import Any

from ecomctl.adapters.seeding.tables import TABLE_KINDS, Row

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z, where PostgreSQL's timestamps count from
NUMERIC_SCALE = 2  # NUMERIC(12,2): every money column

_NULL = b"\xff\xff\xff\xff"
_LEN = Struct(">i")
_FIELD_COUNT = Struct(">h")
_INT8 = Struct(">iq")
_INT4 = Struct(">ii")
_UUID_LEN = _LEN.pack(16)
_TRUE = _LEN.pack(1) + b"\x01"
_FALSE = _LEN.pack(1) + b"\x00"
_NUMERIC_HEAD = Struct(">ihhhh")  # length, ndigits, weight, sign, dscale
_NUMERIC_NEG = 0x4000

Encoder = Callable[[Any], bytes]


def _int8(value: int) -> bytes:
    return _INT8.pack(8, value)


def _int4(value: int) -> bytes:
    return _INT4.pack(4, value)


def _bool(value: bool) -> bytes:
    return _TRUE if value else _FALSE


def _text(value: str) -> bytes:
    data = value.encode()
    return _LEN.pack(len(data)) + data


def _uuid(value: int) -> bytes:
    return _UUID_LEN + value.to_bytes(16, "big")


def _ts(unix_seconds: int) -> bytes:
    return _INT8.pack(8, (unix_seconds - PG_EPOCH_S) * 1_000_000)


def numeric_cents(cents: int) -> bytes:
    """A NUMERIC with two decimal places, exactly ``cents / 100``: base-10000 digits."""
    sign = _NUMERIC_NEG if cents < 0 else 0
    whole, fraction = divmod(abs(cents), 100)
    digits: list[int] = []
    while whole:
        whole, digit = divmod(whole, 10_000)
        digits.append(digit)
    digits.reverse()
    weight = len(digits) - 1
    if fraction:
        digits.append(fraction * 100)
    else:
        while digits and digits[-1] == 0:
            digits.pop()
    if not digits:
        weight, sign = 0, 0
    body = Struct(f">{len(digits)}h").pack(*digits) if digits else b""
    return _NUMERIC_HEAD.pack(8 + len(body), len(digits), weight, sign, NUMERIC_SCALE) + body


_money_cache: dict[int, bytes] = {}


def _money(cents: int) -> bytes:
    encoded = _money_cache.get(cents)
    if encoded is None:
        if len(_money_cache) > 200_000:
            _money_cache.clear()
        encoded = _money_cache[cents] = numeric_cents(cents)
    return encoded


_ENCODERS: dict[str, Encoder] = {
    "int8": _int8, "int4": _int4, "bool": _bool, "text": _text, "uuid": _uuid, "ts": _ts,
    "money": _money,
}


def _nullable(encode: Encoder) -> Encoder:
    def encode_or_null(value: Any) -> bytes:
        return _NULL if value is None else encode(value)

    return encode_or_null


def row_encoder(kinds: Sequence[str], nullable: Iterable[int] = ()) -> Callable[[Row], bytes]:
    """A function from a raw row to its binary COPY tuple; columns in ``nullable`` may be
    None. One field at a time: the reference that ``rows_encoder`` is checked against."""
    may_be_null = set(nullable)
    encoders = tuple(
        _nullable(_ENCODERS[kind]) if index in may_be_null else _ENCODERS[kind]
        for index, kind in enumerate(kinds)
    )
    count = _FIELD_COUNT.pack(len(kinds))

    def encode(row: Row) -> bytes:
        return count + b"".join([fn(value) for fn, value in zip(encoders, row, strict=True)])

    return encode


# How each kind of column goes into a struct format: its format characters and the
# expressions that give their arguments (``{v}`` is the column's value). Text and money are
# of variable length: text adds its length to the struct before it and its bytes after it;
# money and nullable columns are encoded on their own.
_FIXED: dict[str, tuple[str, tuple[str, ...]]] = {
    "int8": ("iq", ("8", "{v}")),
    "int4": ("ii", ("4", "{v}")),
    "bool": ("i?", ("1", "{v}")),
    "uuid": ("iQQ", ("16", "{v} >> 64", "{v} & 0xFFFFFFFFFFFFFFFF")),
    "ts": ("iq", ("8", f"({{v}} - {PG_EPOCH_S}) * 1000000")),
}


def rows_encoder(
    kinds: Sequence[str], nullable: Iterable[int] = ()
) -> Callable[[Iterable[Row]], bytes]:
    """A function from raw rows to their binary COPY tuples, compiled for one column layout:
    the fixed-width fields between two variable ones go through one ``struct`` call, which
    makes a row a few calls instead of one per field (this encoding is most of a seeded
    row's cost)."""
    may_be_null = set(nullable)
    names = [f"v{i}" for i in range(len(kinds))]
    formats = ">h"
    arguments = [str(len(kinds))]
    pieces: list[str] = []  # expressions joined with + into the row's bytes
    before: list[str] = []  # statements before the row's expression
    structs: dict[str, Struct] = {}

    def close() -> None:
        nonlocal formats, arguments
        if formats != ">":
            name = f"s{len(structs)}"
            structs[name] = Struct(formats)
            pieces.append(f"{name}({', '.join(arguments)})")
        formats, arguments = ">", []

    for index, (kind, name) in enumerate(zip(kinds, names, strict=True)):
        if index in may_be_null or kind == "money":
            close()
            encoder = f"e{index}"
            structs[encoder] = (_nullable(_ENCODERS[kind]) if index in may_be_null  # type: ignore[assignment]
                                else _ENCODERS[kind])
            pieces.append(f"{encoder}({name})")
        elif kind == "text":
            before.append(f"b{index} = {name}.encode()")
            formats += "i"
            arguments.append(f"len(b{index})")
            close()
            pieces.append(f"b{index}")
        else:
            fmt, args = _FIXED[kind]
            formats += fmt
            arguments.extend(arg.format(v=name) for arg in args)
    close()
    namespace: dict[str, Any] = {
        name: value.pack if isinstance(value, Struct) else value
        for name, value in structs.items()
    }
    body = "\n".join(f"        {line}" for line in before)
    source = (
        "def encode(rows):\n"
        "    out = []\n"
        "    append = out.append\n"
        f"    for {', '.join(names)}, in rows:\n"
        f"{body}\n"
        f"        append({' + '.join(pieces)})\n"
        "    return b''.join(out)\n"
    )
    exec(compile(source, f"<binary COPY encoder {', '.join(kinds)}>", "exec"), namespace)
    encode: Callable[[Iterable[Row]], bytes] = namespace["encode"]
    return encode


# Columns that the seed leaves NULL in some rows.
NULLABLE_COLUMNS: dict[str, tuple[int, ...]] = {"categories": (3,), "payments": (8,)}
_TABLE_ENCODERS = {
    table: rows_encoder(kinds, NULLABLE_COLUMNS.get(table, ()))
    for table, kinds in TABLE_KINDS.items()
}


def encode_rows(table: str, rows: Iterable[Row]) -> bytes:
    """The binary COPY tuples of ``rows`` (raw values, ``TABLE_KINDS[table]``)."""
    return _TABLE_ENCODERS[table](rows)
