"""On the seeded demo, every label says no more than the figures behind it (issue: truthful
labels, plain words); and no template comment can print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client
from django_scopes import scope, scopes_disabled

from comanage.core import charts
from comanage.core.models import Organization, User

ROOT = Path(__file__).resolve().parents[2]


def _client(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def _text(html: bytes) -> str:
    """The visible words of a page, roughly: tags, titles and descriptions out."""
    body = html.decode()
    body = re.sub(r"<(title|desc|script|style)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_no_template_has_a_multi_line_hash_comment():
    # Django's {# #} is one line only: a longer one is printed on the page as text.
    offenders = []
    for path in ROOT.rglob("*.html"):
        if "node_modules" in path.parts or ".venv" in path.parts:
            continue
        for match in re.finditer(r"\{#(.*?)(#\}|$)", path.read_text(), flags=re.S):
            if "\n" in match.group(1):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_an_indicator_chart_never_says_met_for_a_result_under_the_minimum():
    svg = str(
        charts.indicator_chart(
            title="30-day readmission",
            direction="lower_is_better",
            threshold="8",
            target="6",
            stretch="4",
            baseline=None,
            unit="%",
            results=[("2024", "13.64", ""), ("2025", "5.56", "n = 18 is below the minimum of 25")],
        )
    )
    assert "Too few cases" in svg
    assert "Target met" not in svg
    assert "not scored: n = 18 is below the minimum of 25" in svg  # the tooltip and desc


@pytest.mark.django_db
def test_the_demo_pages_say_only_what_the_figures_support(seeded_demo, settings):
    settings.COMANAGE_REQUIRE_2FA = False
    with scopes_disabled():
        org = Organization.objects.get(slug="riverside")
    with scope(organization=org):
        from adjudication.models import CalculationRun
        from adjudication.pdf import _indicator_rows
        from agreements.models import Agreement

        co = Agreement.objects.get(kind="co_management")
        ss = Agreement.objects.get(kind="shared_savings")
        run_2025 = (
            CalculationRun.objects.filter(agreement=co, programme_year__number=2)
            .order_by("-version")
            .first()
        )
        pdf_rows = {r.outcome.key: r for r in _indicator_rows(run_2025)}
    executive = _client("executive@riverside.example")

    dashboard = _text(executive.get("/o/riverside/dashboard/").content)
    assert "{#" not in dashboard and "portfolio charts" not in dashboard
    # The 2025 report is with counsel, not adjudicated: the badge says so.
    assert "adjudicated" not in re.sub(r"not yet adjudicated", "", dashboard)
    assert "with counsel" in dashboard

    page = executive.get(f"/o/riverside/dashboard/agreements/{co.pk}/").content.decode()
    # Readmission 2025: n = 18 under a minimum of 25, not scored, paid 0%: never "Target met".
    readmission = page[page.index("30-day all-cause readmission") :]
    readmission = readmission[: readmission.index("</svg>")]
    assert "Too few cases" in readmission
    assert "Target met" not in readmission
    assert "n = 18 is below the minimum of 25" in readmission
    assert ">with counsel<" in page and ">paid<" in page and "adjudicated" not in page

    # The counsel PDF's chart of the same indicator says the same.
    chart = pdf_rows["readmission_30d"].chart
    assert "Too few cases" in chart and "Target met" not in chart

    # Distributed is what has been paid: the projection and the unpaid year are apart.
    savings = _text(executive.get(f"/o/riverside/dashboard/agreements/{ss.pk}/").content)
    assert "Distributed" not in savings
    assert "Paid to physicians over the term $0.00" in savings
    assert "Not yet paid or projected $86,219.70" in savings

    # The CEO's queue counts only the physicians paid something, and names the forfeit.
    ceo = _text(_client("ceo@riverside.example").get("/o/riverside/adjudication/ceo/").content)
    assert "to 3 physicians · 1 forfeited" in ceo
    assert "to 4 physicians" not in ceo
