"""Issue 17 audit, patient-level case files: next month's registry extract written otherwise
(BOM, CRLF, headers in other capitals and spacing, columns in another order, Yes/No and 1/0
flags, an extra column, one more title row) is read by the saved mapping with nothing chosen,
to example D's score; and bad input (a date fitting two formats, an empty file) is named."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from indicators import services
from indicators.casefile import CaseFileRefused
from tests.indicators.conftest import EXAMPLE_D, example_c_results

pytestmark = pytest.mark.django_db
D = Decimal
REGISTRY = (
    Path(__file__).resolve().parent.parent / "data" / "exports" / "quality_registry_cases.csv"
)
CANONICAL = EXAMPLE_D.read_text().splitlines()[0].split(",")


def _create(o, data: bytes, name: str = "registry.csv"):
    return services.case_import_create(
        agreement=o.agreement,
        programme_year=o.year,
        period=o.annual,
        data=data,
        filename=name,
        user=None,
        indicator_keys=["vte_prophylaxis"],
    )


def _columns(step):
    needed = {f["name"] for f in step["fields"]}
    proposed = {c["header"]: c["field"] for c in step["columns"]}
    for header, name in zip(step["header"], CANONICAL, strict=True):
        if not proposed[header] and name in needed:
            proposed[header] = name
    return proposed


def _rewritten(data: bytes) -> bytes:
    """The extract as another month's export writes it."""
    lines = data.decode().splitlines()
    rows = list(csv.reader(lines[1:]))
    header, body = rows[0], rows[1:]
    order = list(reversed(range(len(header))))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Quality registry extract"])
    writer.writerow(["VTE prophylaxis, run 2/1/2026"])
    writer.writerow([f"  {header[i].upper()} " for i in order] + ["Unit"])
    flags = {"Y": "Yes", "N": "No"}
    for row in body:
        writer.writerow([flags.get(row[i], row[i]) for i in order] + ["4 West"])
    return b"\xef\xbb\xbf" + out.getvalue().encode()


def test_next_months_extract_written_otherwise_is_read_by_the_saved_mapping(ortho, media):
    with scopes_disabled():
        first = _create(ortho, REGISTRY.read_bytes())
        step = services.case_import_mapping_step(case_import=first)
        services.case_import_map(
            case_import=first, user=None, columns=_columns(step), save_as="Registry"
        )
        again = _create(ortho, _rewritten(REGISTRY.read_bytes()), name="registry-feb.csv")
        step = services.case_import_mapping_step(case_import=again)
        assert step["saved"] is not None and step["saved"]["name"] == "Registry"
        assert step["header_row"] == 3 and step["issues"] == []
        services.case_import_map(case_import=again, user=None)
        assert again.mapping_used["name"] == "Registry"
        outcome = services.case_import_apply(case_import=again)
    result = outcome.results[0]
    assert result.display_value == D("92.31")
    assert (result.numerator, result.denominator, result.case_count) == (D(12), D(13), 13)


def test_a_date_that_fits_two_formats_names_the_registry_column(ortho, media):
    lines = REGISTRY.read_text().splitlines()
    rows = list(csv.reader(lines[1:]))
    at = rows[0].index("Discharge Date")
    for n, row in enumerate(rows[1:]):
        row[at] = ("03/04/2025", "05/06/2025", "1/1/2025")[n % 3]  # every one fits both
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([[lines[0]], *rows])
    data = out.getvalue().encode()
    with scopes_disabled():
        ci = _create(ortho, data)
        step = services.case_import_mapping_step(case_import=ci)
        services.case_import_map(case_import=ci, user=None, columns=_columns(step))
        with pytest.raises(CaseFileRefused) as refused:
            services.case_import_apply(case_import=ci)
    problem = refused.value.problems.items[0]
    assert problem.column == "Discharge Date"
    assert "03/04/2025" in problem.message and "fit both" in problem.message


def test_an_empty_file_is_refused_with_the_reason(ortho, media):
    def upload_and_map():
        ci = _create(ortho, b"")
        services.case_import_map(case_import=ci, user=None, columns={})

    with scopes_disabled(), pytest.raises(ValidationError) as refused:
        upload_and_map()
    assert "empty" in " ".join(refused.value.messages)


def test_the_incentive_inputs_say_which_mapping_read_the_case_file(ortho, media):
    example_c_results(ortho, with_vte=False)
    with scopes_disabled():
        ci = _create(ortho, REGISTRY.read_bytes())
        step = services.case_import_mapping_step(case_import=ci)
        services.case_import_map(
            case_import=ci, user=None, columns=_columns(step), save_as="Quality registry extract"
        )
        services.case_import_apply(case_import=ci)
        inputs = services.incentive_for_year(programme_year=ortho.year).inputs
    recorded = inputs["results"]["vte_prophylaxis"]["mapping"]
    assert recorded["name"] == "Quality registry extract" and recorded["version"] == 1
    assert recorded["label"] == "Quality registry extract, version 1"
