"""Binary COPY rows built from Arrow columns: exact amounts, dates, booleans, nulls, text."""

from __future__ import annotations

import datetime as dt
import io
import struct
from decimal import Decimal

import pyarrow as pa
import pytest
from django.db import connection

from comanage.core.tabular import pgcopy


def _numeric(field: bytes) -> Decimal:
    """numeric_send's form read back (ndigits, weight, sign, dscale, base-10000 digits)."""
    ndigits, weight, sign, dscale = struct.unpack(">hhHh", field[:8])
    digits = struct.unpack(f">{ndigits}h", field[8:])
    value = sum(Decimal(d) * Decimal(10000) ** (weight - k) for k, d in enumerate(digits))
    return (-value if sign == 0x4000 else value).quantize(Decimal(1).scaleb(-dscale))


def _fields(body: bytes, columns: int) -> list[list[bytes | None]]:
    rows, at = [], 0
    while at < len(body):
        (count,) = struct.unpack_from(">h", body, at)
        assert count == columns
        at += 2
        row: list[bytes | None] = []
        for _ in range(count):
            (length,) = struct.unpack_from(">i", body, at)
            at += 4
            row.append(None if length == -1 else body[at : at + length])
            at += max(length, 0)
        rows.append(row)
    return rows


def test_amounts_keep_every_digit_and_their_sign():
    values = ["0", "1.5", "0.0001", "999999999999.9999", "-12.5", "10000"]
    column = pgcopy.Column("a", pa.array([Decimal(v) for v in values], pa.decimal128(16, 4)))
    names, body = pgcopy.copy_rows([column])
    assert names == ["a"]
    read = [_numeric(row[0]) for row in _fields(body.to_pybytes(), 1)]
    assert read == [Decimal(v).quantize(Decimal("0.0001")) for v in values]


def test_fixed_columns_come_first_and_nulls_have_no_bytes():
    columns = [
        pgcopy.Column("t", pa.array(["héllo", "", None])),
        pgcopy.Column("d", pa.array([dt.date(2000, 1, 1), None, dt.date(2025, 12, 31)])),
        pgcopy.Column("b", pa.array([True, False, True])),
        pgcopy.Column("i", pa.array([1, 2**40, 3], pa.int64())),
    ]
    names, body = pgcopy.copy_rows(columns)
    assert names == ["b", "i", "t", "d"]  # no nulls first, then text and columns with nulls
    rows = _fields(body.to_pybytes(), 4)
    assert rows[0] == [b"\x01", struct.pack(">q", 1), "héllo".encode(), struct.pack(">i", 0)]
    assert rows[1][2:] == [b"", None]
    assert rows[2][3] == struct.pack(">i", (dt.date(2025, 12, 31) - dt.date(2000, 1, 1)).days)


@pytest.mark.django_db
@pytest.mark.postgres
def test_postgres_reads_the_rows_back_exactly():
    if connection.vendor != "postgresql":
        pytest.skip("binary COPY is PostgreSQL's; set DATABASE_URL=postgres://... (CI does)")
    columns = [
        pgcopy.Column("id", pa.array([1, 2], pa.int64())),
        pgcopy.Column("note", pa.array(['Blue "Cross", Inc\n', None])),
        pgcopy.Column("day", pa.array([dt.date(1999, 12, 31), None])),
        pgcopy.Column("flag", pa.array([None, False])),
        pgcopy.Column("cost", pa.array([Decimal("955.6789"), Decimal("0")], pa.decimal128(16, 4))),
        pgcopy.Column("weight", pa.array([Decimal("-1.5"), None], pa.decimal128(10, 4))),
    ]
    names, body = pgcopy.copy_rows(columns)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE pgcopy_check (id bigint, note varchar(30), day date, "
            "flag boolean, cost numeric(16, 4), weight numeric(10, 4))"
        )
        cursor.cursor.copy_expert(
            f"COPY pgcopy_check ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)",
            io.BytesIO(pgcopy.HEADER + body.to_pybytes() + pgcopy.TRAILER),
        )
        cursor.execute("SELECT id, note, day, flag, cost, weight FROM pgcopy_check ORDER BY id")
        assert cursor.fetchall() == [
            (
                1,
                'Blue "Cross", Inc\n',
                dt.date(1999, 12, 31),
                None,
                Decimal("955.6789"),
                Decimal("-1.5000"),
            ),
            (2, None, None, False, Decimal("0.0000"), None),
        ]
