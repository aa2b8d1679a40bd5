"""The seed's binary COPY encoding: the compiled row encoders against the one-field-at-a-time
reference, and NUMERIC's base-10000 digits."""

from __future__ import annotations

import struct
from decimal import Decimal

import pytest

from ecomctl.adapters.seeding.binary_copy import (
    NULLABLE_COLUMNS,
    PG_EPOCH_S,
    encode_rows,
    numeric_cents,
    row_encoder,
    rows_encoder,
)
from ecomctl.adapters.seeding.tables import TABLE_KINDS
from ecomctl.seed.generate import ShopGenerator, build_block
from ecomctl.seed.plan import SeedPlan


def decode_numeric(data: bytes) -> Decimal:
    length, ndigits, weight, sign, dscale = struct.unpack(">ihhhh", data[:12])
    assert length == len(data) - 4 and dscale == 2
    digits = struct.unpack(f">{ndigits}h", data[12:])
    value = sum((Decimal(d) * Decimal(10_000) ** (weight - i) for i, d in enumerate(digits)),
                Decimal(0))
    return (-value if sign == 0x4000 else value).quantize(Decimal("0.01"))


@pytest.mark.parametrize("cents", [0, 1, 99, 100, 1999, 10_000, 1_000_000, 123_456_789_01,
                                   50_000_00, 10_000_00, -1999])
def test_numeric_is_exact_with_two_places(cents: int) -> None:
    assert decode_numeric(numeric_cents(cents)) == Decimal(cents).scaleb(-2)


def test_numeric_digits_are_canonical() -> None:
    # 10000.00: one digit of weight 1, no trailing zero digits
    assert numeric_cents(10_000_00)[4:12] == struct.pack(">hhhh", 1, 1, 0, 2)
    assert numeric_cents(0)[4:12] == struct.pack(">hhhh", 0, 0, 0, 2)


def test_compiled_encoders_match_the_reference_on_generated_rows() -> None:
    generator = ShopGenerator(SeedPlan(users=30, categories=12, products=60, orders=80))
    seen = set()
    for block in generator.blocks():
        for table, rows in build_block(generator.context, block):
            reference = row_encoder(TABLE_KINDS[table], NULLABLE_COLUMNS.get(table, ()))
            assert encode_rows(table, rows) == b"".join(reference(row) for row in rows), table
            seen.add(table)
    assert len(seen) == len(TABLE_KINDS)


def test_fields_are_laid_out_as_postgres_reads_them() -> None:
    encode = rows_encoder(("int8", "text", "bool", "uuid", "ts", "int4"))
    row = (7, "é", True, 1 << 64 | 2, PG_EPOCH_S + 1, -3)
    assert encode([row]) == (
        struct.pack(">h", 6)
        + struct.pack(">iq", 8, 7)
        + struct.pack(">i", 2) + "é".encode()
        + struct.pack(">i?", 1, True)
        + struct.pack(">iQQ", 16, 1, 2)
        + struct.pack(">iq", 8, 1_000_000)
        + struct.pack(">ii", 4, -3)
    )
    nullable = rows_encoder(("int8", "text"), nullable=(1,))
    assert nullable([(1, None)]) == struct.pack(">hiqi", 2, 8, 1, -1)
