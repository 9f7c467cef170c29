"""Every CSV export neutralises spreadsheet formulas.

1. The helper: a cell starting with ``=``, ``+``, ``-`` (not a number), ``@``, tab or CR comes
   out prefixed with ``'``; fuzzed with hypothesis.
2. The views: no view builds a CSV response any other way than through ``csv_response`` (a
   source scan of every app's views and API modules, with the known exceptions listed).
3. End to end: hostile values stored in the database come out neutralised from real exports
   (physicians, practices, a job's error report fed by a refused import).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled
from hypothesis import given, settings
from hypothesis import strategies as st

from comanage.core import exports
from comanage.core.models import Job
from tests import factories as f

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = ["=cmd|' /C calc'!A0", "+SUM(A1:A2)", "-2+3", "@SUM(1)", '=HYPERLINK("x")']
# Views that answer text/csv without csv_response, and why that is safe.
CSV_WITHOUT_HELPER = {
    "indicators/views.py:import_template_csv": "only the column names of the indicators' "
    "case-file spec (template_csv), no stored values",
    # The match is the OpenAPI response type on JobViewSet.errors, which uses csv_response.
    "comanage/core/api_views.py:_error_rows": "schema annotation only",
    # OpenAPI response types: the payment-line export renders through CSVRenderer (csv_text),
    # the import's problems.csv through csv_response.
    "adjudication/api.py:_programme_year": "schema annotation only",
    "savings/api.py:_field_error": "schema annotation only",
}


@settings(max_examples=200, derandomize=True, database=None)
@given(st.text(max_size=20))
def test_the_helper_neutralises_every_formula_start(value):
    out = exports.neutralise(value)
    if value[:1] in ("=", "+", "@", "\t", "\r") or (value.startswith("-") and not _number(value)):
        assert out == "'" + value
    else:
        assert out == value
    # Through the CSV writer too: the first character a spreadsheet sees is never a trigger.
    row = next(
        csv.reader(io.StringIO(exports.csv_text(["h"], [[value]]).split("\r\n", 1)[1])), [""]
    )
    cell = row[0] if row else ""
    assert not (cell[:1] in ("=", "+", "@") or (cell.startswith("-") and not _number(cell)))


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_no_view_writes_csv_without_the_helper():
    """A view module that answers text/csv must do it through csv_response."""
    offenders = []
    for path in (
        sorted(ROOT.glob("*/views.py"))
        + sorted(ROOT.glob("*/api.py"))
        + sorted(ROOT.glob("comanage/core/*view*.py"))
    ):
        source = path.read_text()
        for match in re.finditer(r"text/csv|csv\.writer\(", source):
            function = re.findall(r"^def (\w+)", source[: match.start()], re.M)
            where = f"{path.relative_to(ROOT)}:{function[-1] if function else '?'}"
            if where not in CSV_WITHOUT_HELPER:
                offenders.append(where)
    assert offenders == [], "CSV written without comanage.core.exports.csv_response"


def _cells(response) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return [c for row in csv.reader(io.StringIO(response.content.decode())) for c in row]


@pytest.mark.django_db
def test_physician_and_practice_exports_neutralise_hostile_names(world):
    with scopes_disabled():
        practice = f.PracticeFactory(organization=world.org, name=HOSTILE[1])
        f.PhysicianFactory(
            organization=world.org,
            last_name=HOSTILE[0],
            first_name=HOSTILE[3],
            specialty=HOSTILE[2],
            practice=practice,
        )
    client = world.client("administrator")
    physicians = _cells(
        client.get(reverse("physician_list", args=[world.org.slug]), {"export": "csv"})
    )
    practices = _cells(
        client.get(reverse("practice_list", args=[world.org.slug]), {"export": "csv"})
    )
    for hostile, cells in (
        (HOSTILE[0], physicians),
        (HOSTILE[3], physicians),
        (HOSTILE[2], physicians),
        (HOSTILE[1], practices),
    ):
        assert "'" + hostile in cells
        assert hostile not in cells


@pytest.mark.django_db
def test_a_job_error_report_neutralises_formulas_from_a_refused_file(world):
    """The error report quotes what the user uploaded: a formula there must not run."""
    with world.scope():
        job = Job.objects.create(
            organization=world.org,
            kind="savings.import",
            status="failed",
            errors=[
                {"row": 2, "column": HOSTILE[0], "message": "=cmd|' /C calc'!A0 is not a number"},
                {"row": 3, "column": "unit_cost", "message": HOSTILE[4]},
            ],
        )
    client = world.client("administrator")
    for url in (
        reverse("job_errors_csv", args=[world.org.slug, job.pk]),
        f"/api/v1/organizations/{world.org.slug}/jobs/{job.pk}/errors.csv",
    ):
        cells = _cells(client.get(url, follow=True))
        assert "'" + HOSTILE[0] in cells and HOSTILE[0] not in cells, url
        assert "'=cmd|' /C calc'!A0 is not a number" in cells
        assert "'" + HOSTILE[4] in cells
