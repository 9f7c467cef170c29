"""Validated usage batches hold repeated columns dictionary-encoded: the whole-file checks
number equal text as one value whatever its dictionary position, and the binary COPY rows of a
dictionary column are the rows of the same column as plain values."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc

from comanage.core.tabular import pgcopy
from savings import case_rows, importing


def _fields(body: bytes, names: list[str]) -> list[dict[str, bytes | None]]:
    rows, at = [], 0
    while at < len(body):
        (count,) = struct.unpack_from(">h", body, at)
        at += 2
        row: dict[str, bytes | None] = {}
        for k in range(count):
            (length,) = struct.unpack_from(">i", body, at)
            at += 4
            row[names[k]] = None if length == -1 else body[at : at + length]
            at += max(length, 0)
        rows.append(row)
    return rows


def _dictionary(values: list, kind: pa.DataType) -> pa.DictionaryArray:
    encoded = pc.dictionary_encode(pa.array(values, kind))
    return importing.as_dictionary(encoded.indices, encoded.dictionary)


def test_a_dictionary_column_copies_as_the_plain_column():
    text = ["CT1", "CT22", None, "CT1", "", "CT22"]
    days = [dt.date(2025, 1, 1), None, dt.date(2025, 3, 4), dt.date(2025, 1, 1), None, None]
    costs = [Decimal("12.5"), Decimal("0.0001"), Decimal("12.5"), Decimal("999.9999")] * 1 + [
        Decimal("0"),
        Decimal("12.5"),
    ]
    flags = [True, None, False, True, True, None]
    kinds = {"t": pa.string(), "d": pa.date32(), "c": pa.decimal128(16, 4), "b": pa.bool_()}
    plain = [
        pgcopy.Column(name, pa.array(values, kinds[name]))
        for name, values in (("t", text), ("d", days), ("c", costs), ("b", flags))
    ]
    dictionary = [
        pgcopy.Column(c.name, _dictionary(c.values.to_pylist(), c.values.type)) for c in plain
    ]
    names, body = pgcopy.copy_rows(plain)
    dict_names, dict_body = pgcopy.copy_rows(dictionary)
    assert _fields(body.to_pybytes(), names) == _fields(dict_body.to_pybytes(), dict_names)
    assert len(_fields(body.to_pybytes(), names)) == 6


def test_text_of_one_length_on_every_row_is_a_fixed_field():
    columns = [
        pgcopy.Column("npi", pa.array(["1234567893", "1245319599"])),
        pgcopy.Column("case", pa.array(["A-1", "A-10"])),
        pgcopy.Column("id", pa.array([1, 2], pa.int64())),
    ]
    names, body = pgcopy.copy_rows(columns)
    assert names == ["npi", "id", "case"]
    rows = _fields(body.to_pybytes(), names)
    assert [r["npi"] for r in rows] == [b"1234567893", b"1245319599"]
    assert [r["case"] for r in rows] == [b"A-1", b"A-10"]


def test_equal_text_in_two_dictionary_positions_is_one_value():
    # ' I1' and 'I1' are two distinct raw values that read as one item once trimmed.
    items = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 2], pa.int32()), pa.array(["I1", "I1", "I2"])
    )
    number, count = case_rows.codes(pa.chunked_array([items]))
    assert number[0] == number[1] != number[2]
    assert count == 3  # two values and the number kept for a null
    problems = importing.Problems()
    importing.duplicate_checks(problems, [pa.array(["c1", "c1", "c1"])], [items], [2])
    assert problems.total == 1
    assert problems.items[0]["message"] == "duplicate row: case c1 item I1 is already on row 2"
    assert problems.items[0]["row"] == 3


def test_cases_disagreeing_are_found_across_dictionary_batches():
    def batch(case_ids: list[str], payers: list[str | None]) -> pa.Table:
        columns = {"case_id": pa.array(case_ids)}
        for field in case_rows.CASE_FIELDS:
            values = payers if field == "payer" else ["x"] * len(case_ids)
            columns[field] = _dictionary(values, pa.string())
        return pa.table(columns)

    problems = importing.Problems()
    tables = [batch(["c1", "c2"], ["medicare", None]), batch(["c1", "c2"], ["medicare", "acme"])]
    case_rows.case_agreement_checks(problems, tables, [2, 4])
    assert problems.total == 1
    assert problems.items[0]["message"] == (
        "the rows of case c2 disagree on payer (rows 3, 5): all rows of one case must agree"
    )
