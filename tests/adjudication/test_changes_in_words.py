"""Issue 20: the changes since the previous calculation version are said in words, with the
values formatted, in the report PDF and on the pages; never as stored figure paths."""

from __future__ import annotations

import re

import pytest
from django.template.loader import render_to_string

from adjudication import pdf, services
from adjudication.changes import change_rows, figure_value, figure_words, run_change_rows
from adjudication.read_models import RunRead
from savings.engine import SavingsResult
from tests.adjudication.conftest import co_management_payload
from tests.plain_words import problems, visible_text
from tests.savings.test_engine import example_a  # noqa: F401 - the fixture

# A stored path as the diff stores it: dotted names, perhaps with [selectors].
STORED_PATH = re.compile(r"\b[a-z_]+(?:\[[^\]]*\])?(?:\.[a-z_]+(?:\[[^\]]*\])?)+")


@pytest.fixture
def second_version(world, co_management, recorded):  # type: ignore[no-untyped-def]
    """Example C recorded again with a lower patient-experience score: run version 2."""
    _agreement, year = co_management
    with world.scope():
        outcome = services.calculation_record(
            programme_year=year,
            payload=co_management_payload(world, year, scores={"pex": ("79.0", 300)}),
            user=world.users["administrator"],
        )
    assert outcome.run.version == 2 and outcome.run.diff
    return outcome


def _changes_table(html: str) -> str:
    text = " ".join(visible_text(html).split())
    start = text.index("Changes since calculation version 1")
    return text[start : text.index("Approval trail", start)]


@pytest.mark.django_db
def test_the_report_pdf_names_each_changed_figure_in_words(world, second_version):
    with world.scope():
        context = pdf.report_context(report=second_version.report)
        html = render_to_string(
            "adjudication/pdf/report.html", {"c": context, "header": pdf._header(context)}
        )
    table = _changes_table(html)
    assert "Indicator 'Patient experience top-box %', earned $94,117.65" in table
    assert "Indicator 'Patient experience top-box %', score 86.00 79.00" in table
    assert "Incentive earned $300,000.00" in table
    assert "Total to pay" in table
    assert not STORED_PATH.search(table), STORED_PATH.search(table)
    assert "[pex]" not in table and "figures" not in table
    assert problems(table) == []


@pytest.mark.django_db
def test_the_run_page_and_the_counsel_queue_show_the_changes_in_words(world, second_version):
    client = world.client("administrator")
    o = world.org.slug
    page = client.get(f"/o/{o}/adjudication/runs/{second_version.run.pk}/")
    assert page.status_code == 200
    text = " ".join(visible_text(page.content.decode()).split())
    assert "Indicator 'Patient experience top-box %', payout" in text
    assert "figures.incentive" not in text and "totals.incentive_earned" not in text


def test_a_savings_physician_and_an_opportunity_are_named(example_a: SavingsResult):  # noqa: F811
    read = RunRead(kind="shared_savings", results={}, figures={"savings": example_a.to_dict()})
    adams = example_a.physicians[0]
    opportunity = example_a.opportunities[0]
    rows = change_rows(
        [
            {
                "path": f"figures.savings.physicians[{adams.physician_id}].amount",
                "old": "1000.00",
                "new": "1234.56",
            },
            {
                "path": f"figures.savings.opportunities[{opportunity.key}].counted_savings",
                "old": None,
                "new": "-25.00",
            },
        ],
        reads=[read],
    )
    assert rows[0].figure == f"Dr {adams.first_name} {adams.last_name}, share of savings"
    assert (rows[0].previous, rows[0].current) == ("$1,000.00", "$1,234.56")
    assert rows[1].figure == f"Opportunity '{opportunity.name}', counted savings"
    assert (rows[1].previous, rows[1].current) == ("—", "-$25.00")


@pytest.mark.parametrize(
    "path",
    [
        "physicians.3.share",  # the shape issue 20 quotes
        "inputs.savings.base_usage[1].sha256",
        "figures.something_new[k9].deep_value",
        "flags[2].message",
        "unknown",
    ],
)
def test_a_path_nothing_names_is_still_said_in_words(path):
    (row,) = change_rows([{"path": path, "old": "1", "new": "2"}])
    assert not STORED_PATH.search(row.figure), row.figure
    assert "[" not in row.figure and "_" not in row.figure
    assert row.figure[0].isupper()


def test_values_are_formatted_by_what_the_figure_is():
    assert figure_value("totals.total_to_pay", "1234.5") == "1,234.50"  # not stored money
    assert figure_value("totals.total_to_pay", "1234.56") == "$1,234.56"
    assert figure_value("figures.incentive.indicators[a].payout_pct", "62.5000") == "62.50%"
    assert figure_value("figures.incentive.indicators[a].weight", "25") == "25.00%"
    assert figure_value("figures.savings.opportunities[a].applied_volume_factor", "0.879121") == (
        "87.91%"
    )
    assert figure_value("figures.fixed_fee.lines[2025-03-01].month", "2025-03-01") == "Mar 1, 2025"
    assert figure_value("figures.incentive.indicators[a].status", "no_score") == "No score"
    assert figure_value("figures.x", True) == "Yes"
    assert figure_words("totals.fmv_headroom", _no_names()) == "Headroom under the FMV maximum"


def _no_names():  # type: ignore[no-untyped-def]
    from adjudication.changes import _Names

    return _Names([])


@pytest.mark.django_db
def test_a_first_version_has_no_changes(world, recorded):
    with world.scope():
        assert run_change_rows(recorded.run) == []
