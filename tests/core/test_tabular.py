"""The tabular-input module: exact, vectorised parsing of US formats, the header under title
rows, the proposed mapping and its checks (pure: no database)."""

from __future__ import annotations

import pyarrow as pa
import pytest

from comanage.core.tabular import formats
from comanage.core.tabular.header import find_header, header_key
from comanage.core.tabular.mapping import ColumnMapping, MappedBatches, check, propose
from comanage.core.tabular.problems import Problems, TableRefused
from comanage.core.tabular.step import mapping_step
from savings.importing import PRICE_FIELDS, USAGE_FIELDS


def _texts(values):
    return pa.array(values, pa.string())


@pytest.mark.parametrize(
    ("text", "fmt", "iso"),
    [
        ("12/31/2025", "mdy", "2025-12-31"),
        ("1/5/25", "mdy", "2025-01-05"),
        ("1/5/99", "mdy", "1999-01-05"),
        ("31/12/2025", "dmy", "2025-12-31"),
        (" 2025-1-3 ", "mdy", "2025-01-03"),
        ("45657", "excel", "2024-12-31"),
        ("45657.0", "excel", "2024-12-31"),
        ("2/30/2025", "mdy", "2/30/2025"),  # not a date: left as written for the error
        ("13/1/2025", "mdy", "13/1/2025"),
        # A time of day after the date, as SQL and spreadsheet exports write it: dropped.
        ("2025-01-05 00:00:00", "iso", "2025-01-05"),
        ("2025-01-05T00:00:00", "iso", "2025-01-05"),
        ("1/5/2025 0:00", "mdy", "2025-01-05"),
        ("1/5/2025 12:00 AM", "mdy", "2025-01-05"),
        ("12/31/2025 23:59:59.5", "mdy", "2025-12-31"),
        ("2025-01-05 00:00:00+01:00", "iso", "2025-01-05 00:00:00+01:00"),  # a zone: refused
        # A month by name cannot be misread: understood in every format, as ISO is.
        ("13-Jan-2025", "mdy", "2025-01-13"),
        ("13-JAN-25", "iso", "2025-01-13"),
        ("3 Feb 2025", "dmy", "2025-02-03"),
        ("Jan 13, 2025", "mdy", "2025-01-13"),
        ("January 13 2025", "excel", "2025-01-13"),
        ("Sept 3, 2025", "iso", "2025-09-03"),
        ("01-Dec-99", "iso", "1999-12-01"),
        ("13-Jan-2025 00:00:00", "iso", "2025-01-13"),
        ("31-Feb-2025", "iso", "31-Feb-2025"),  # not a date: left as written for the error
        ("13-Foo-2025", "iso", "13-Foo-2025"),
        ("Janu 13, 2025", "iso", "Janu 13, 2025"),
    ],
)
def test_dates_are_read_in_the_chosen_format(text, fmt, iso):
    parsed, used = formats.parse_dates(_texts([text]), fmt)
    assert parsed.to_pylist() == [iso] and used == fmt


def test_a_date_format_is_detected_only_when_unambiguous():
    assert formats.detect_date_format(_texts(["03/04/2025", "01/13/2025"])) == "mdy"
    assert formats.detect_date_format(_texts(["13/04/2025", "01/02/2025"])) == "dmy"
    assert formats.detect_date_format(_texts(["2025-01-02", "45000", ""])) == "excel"
    with pytest.raises(formats.AmbiguousDates, match="03/04/2025"):
        formats.detect_date_format(_texts(["03/04/2025", "05/06/2025"]))
    # With a time of day: detected on the dates, the ambiguous one named as the file wrote it.
    assert formats.detect_date_format(_texts(["1/13/2025 0:00", "2/3/2025 0:00"])) == "mdy"
    with pytest.raises(formats.AmbiguousDates) as ambiguous:
        formats.detect_date_format(_texts(["03/04/2025 0:00", "05/06/2025 0:00"]))
    assert ambiguous.value.example == "03/04/2025 0:00"
    # Months by name decide nothing, like ISO dates: the slash dates beside them still do.
    assert formats.detect_date_format(_texts(["13-Jan-2025", "2/1/2025", "1/13/2025"])) == "mdy"
    with pytest.raises(formats.AmbiguousDates):
        formats.detect_date_format(_texts(["13-Jan-2025", "03/04/2025", "05/06/2025"]))
    assert formats.detect_date_format(_texts(["13-Jan-2025", "Feb 2, 2025"])) == "iso"


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("$1,234.56", "1234.56"),
        ("(12.50)", "-12.50"),
        ("($12.50)", "-12.50"),
        ("$(12.50)", "-12.50"),
        ("$(1,234.56)", "-1234.56"),
        ("$((1))", "$((1))"),
        ("12.50-", "-12.50"),
        ("-$3", "-3"),
        ("$ 7", "7"),
        (".5", "0.5"),
        ("1,23", "1,23"),  # not a thousands separator: refused later with the text
        ("--3", "--3"),
        ("abc", "abc"),
        ("", ""),
    ],
)
def test_amounts_are_read_exactly_as_text(text, plain):
    assert formats.parse_amounts(_texts([text, "$1.00"])).to_pylist()[0] == plain


def test_yes_no_words_and_npis():
    assert formats.parse_booleans(_texts(["Y", "no", "TRUE", "0", "maybe", ""])).to_pylist() == [
        "true",
        "false",
        "true",
        "false",
        "maybe",
        "",
    ]
    assert formats.parse_npis(_texts(["100-000 0004"])).to_pylist() == ["1000000004"]


def test_the_header_is_found_under_title_rows():
    rows = [
        ["Monthly export"],
        [],
        ["Case #", "DOS", "Item #", "Qty"],
        ["c1", "1/2/2025", "A1", "1"],
    ]
    assert find_header(rows, USAGE_FIELDS.keys) == 3
    assert find_header([["a", "b"], ["1", "2"]], USAGE_FIELDS.keys) is None
    assert header_key(" Surgeon NPI ") == "surgeonnpi"


def test_the_proposal_uses_names_then_content():
    header = ["Encounter", "When", "Doc", "Item #"]
    samples = {"When": ["1/13/2025"], "Doc": ["100-000-0004"], "Encounter": ["c1"]}
    proposed = propose(USAGE_FIELDS, header, samples)
    assert proposed == {
        "Encounter": "case_id",
        "Item #": "item_code",
        "Doc": "physician_npi",
        "When": "service_date",
    }


def test_the_checks_name_a_missing_field_and_two_columns_to_one():
    problems = check(
        PRICE_FIELDS, ["Item", "Code", "Cost"], {"Item": "item_code", "Code": "item_code"}
    )
    messages = [p["message"] for p in problems]
    assert "two columns (Item, Code) are mapped to one field, Item code: map only one" in messages
    assert "the required field Unit cost has no column" in messages


def test_an_empty_sheet_and_a_missing_header_are_named():
    empty = mapping_step([[], ["", ""]], fields=PRICE_FIELDS, sheet="Data")
    assert empty["problems"][0]["message"] == "the sheet 'Data' is empty: there is nothing to map"
    lost = mapping_step([["x", "y"], ["1", "2"]], fields=PRICE_FIELDS)
    assert "the header cannot be found" in lost["problems"][0]["message"]


def test_mapped_batches_name_the_original_column_on_ambiguous_dates():
    mapping = ColumnMapping(columns={"Item No": "item_code", "Price": "unit_cost"})
    batch = pa.RecordBatch.from_pydict({"Item No": ["A1"], "Price": ["$1,250.00"]})
    out = MappedBatches(fields=PRICE_FIELDS, mapping=mapping, first_row=2).convert(
        batch, first_row=2
    )
    assert out.to_pylist() == [{"item_code": "A1", "unit_cost": "1250.00"}]
    usage = ColumnMapping(columns={"DOS": "service_date"})
    dates = pa.RecordBatch.from_pydict({"DOS": ["01/01/2025", "03/04/2025"]})
    with pytest.raises(TableRefused) as refused:
        MappedBatches(fields=USAGE_FIELDS, mapping=usage, first_row=5).convert(dates, first_row=5)
    problem = refused.value.problems.items[0]
    assert (problem.row, problem.column) == (6, "DOS")
    timed = pa.RecordBatch.from_pydict({"DOS": ["01/01/2025 0:00", "03/04/2025 0:00"]})
    with pytest.raises(TableRefused) as refused:
        MappedBatches(fields=USAGE_FIELDS, mapping=usage, first_row=5).convert(timed, first_row=5)
    problem = refused.value.problems.items[0]
    assert (problem.row, problem.column) == (6, "DOS")
    assert "03/04/2025 0:00" in problem.message


def test_problems_keep_the_first_hundred_and_count_all():
    problems = Problems(labels={"quantity": "Qty"})
    mask = pa.array([True] * 150)
    problems.add_mask(
        mask, list(range(2, 152)), "quantity", lambda v: f"bad {v}", values=_texts(["x"] * 150)
    )
    problems.trim()
    assert problems.total == 150 and len(problems.items) == 100
    assert problems.items[0] == {"row": 2, "column": "Qty", "message": "bad x"}
