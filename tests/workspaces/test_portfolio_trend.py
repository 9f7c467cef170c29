"""The executive dashboard's portfolio trend: per programme year across every agreement of the
organization, indicators met of those scored, savings and their split, incentive earned and
what payment records show as paid, with a table beside the chart and its CSV. Every expected
figure is computed here from the seeded rows (each agreement's own trend, the savings
calculations, the payment lines), never written down; and one hospital never sees another's."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from comanage.core.models import Organization, User
from comanage.core.templatetags.money import money
from comanage.workspaces import selectors
from tests.workspaces.test_page_truth import _text

ZERO = Decimal("0.00")


@pytest.fixture
def demo(seeded_demo, settings, db):  # type: ignore[no-untyped-def]
    """Both demo hospitals (the same shape of data: the isolation check makes them differ)."""
    settings.COMANAGE_REQUIRE_2FA = False
    with scopes_disabled():
        return {o.slug: o for o in Organization.objects.filter(slug__in=["riverside", "lakeview"])}


def _client(email: str) -> Client:
    client = Client()
    client.force_login(User.objects.get(email=email))
    return client


def _expected(org: Organization, today: dt.date) -> dict[int, dict[str, object]]:
    """Per start year, from each agreement's own trend and the stored rows themselves."""
    from adjudication.models import PaymentKind, PaymentLine, ReportStatus
    from savings.models import CalculationKind, SavingsCalculation

    out: dict[int, dict[str, object]] = defaultdict(
        lambda: {
            "agreements": 0,
            "met": 0,
            "scored": 0,
            "total": 0,
            "earned": None,
            "projected": None,
            "gross": None,
            "share": None,
            "keeps": None,
            "incentive_paid": ZERO,
            "distributions_paid": ZERO,
        }
    )
    with scope(organization=org):
        for glance in selectors.agreements_at_a_glance(today=today):
            started = [y for y in glance.years if y.start <= today]
            rows = selectors.agreement_trend(glance=glance, today=today)
            assert len(rows) == len(started)
            for year, row in zip(started, rows, strict=True):
                e = out[year.start.year]
                e["agreements"] += 1
                if glance.is_co_management:
                    e["met"] += row.indicators_met or 0
                    e["scored"] += row.indicators_scored or 0
                    e["total"] += row.indicators_total or 0
                    key = "projected" if row.basis == "projection" else "earned"
                    if row.earned is not None:
                        e[key] = (e[key] or ZERO) + row.earned
                    continue
                if row.savings is not None:
                    e["gross"] = (e["gross"] or ZERO) + row.savings
                if row.earned is not None:
                    e["share"] = (e["share"] or ZERO) + row.earned
                calc = (
                    SavingsCalculation.objects.filter(
                        programme_year=year, kind=CalculationKind.YEAR
                    )
                    .order_by("-created_at", "-id")
                    .first()
                )
                if calc is not None:
                    keeps = Decimal(calc.result["hospital_keeps"])
                    # What the hospital keeps and the physicians' share are the net savings.
                    assert keeps + Decimal(calc.result["amount_paid"]) == Decimal(
                        calc.result["net_savings"]
                    )
                    e["keeps"] = (e["keeps"] or ZERO) + keeps
        for line in (
            PaymentLine.objects.filter(paid_on__isnull=False)
            .exclude(report__status=ReportStatus.SUPERSEDED)
            .select_related("report__programme_year")
        ):
            year = line.report.programme_year
            if year.start > today or line.kind not in (
                PaymentKind.INCENTIVE,
                PaymentKind.DISTRIBUTION,
            ):
                continue
            key = "incentive_paid" if line.kind == PaymentKind.INCENTIVE else "distributions_paid"
            out[year.start.year][key] += line.paid_amount
    return dict(out)


def _csv(response) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    return {row["programme years starting in"]: row for row in rows}


def _blank(value: object) -> str:
    return "" if value is None else f"{value:.2f}"


def test_the_portfolio_trend_sums_every_agreements_own_trend(demo):
    today = timezone.localdate()
    expected = _expected(demo["riverside"], today)
    assert expected, "the demo has begun programme years"
    # The demo has paid something and has an indicator under its minimum denominator.
    assert any(e["incentive_paid"] > 0 for e in expected.values())
    assert any(e["scored"] < e["total"] for e in expected.values())
    # A current year's projection is never summed into what was earned.
    assert any(e["projected"] is not None for e in expected.values())
    executive = _client("executive@riverside.example")
    rows = _csv(executive.get("/o/riverside/dashboard/trend.csv"))
    assert sorted(rows) == sorted(str(y) for y in expected)
    for year, e in expected.items():
        row = rows[str(year)]
        assert row["agreements"] == str(e["agreements"])
        assert row["indicators met"] == str(e["met"])
        assert row["indicators scored"] == str(e["scored"])
        assert row["indicators in all"] == str(e["total"])
        assert row["incentive earned (closed years, all bases)"] == _blank(e["earned"])
        assert row["incentive projected (year to date, not earned)"] == _blank(e["projected"])
        assert row["incentive paid (payments recorded)"] == _blank(e["incentive_paid"])
        assert row["gross savings"] == _blank(e["gross"])
        assert row["physicians' share of savings (calculated)"] == _blank(e["share"])
        assert row["hospital keeps of savings (calculated)"] == _blank(e["keeps"])
        assert row["paid to physicians from savings (payments recorded)"] == _blank(
            e["distributions_paid"]
        )

    html = executive.get("/o/riverside/dashboard/").content.decode()
    start = html.index('id="portfolio-trend-h"')
    section = html[start : html.index("</section>", start)]
    text = _text(section.encode())
    assert "<svg" in section and "<title>" in section  # a chart with exact tooltips
    assert "Export CSV" in text
    for year, e in expected.items():
        assert str(year) in text
        for amount in (e["earned"], e["projected"], e["gross"], e["share"], e["keeps"]):
            if amount is not None:
                assert money(amount) in text
        if e["total"]:
            assert f"{e['met']} of {e['scored']} scored" in text


def test_the_portfolio_trend_is_the_batch_of_each_agreements_trend(demo):
    today = timezone.localdate()
    with scope(organization=demo["riverside"]):
        glances = selectors.agreements_at_a_glance(today=today)
        batch = selectors.agreement_trends(glances=glances, today=today)
        for glance in glances:
            assert batch[glance.agreement.pk] == selectors.agreement_trend(
                glance=glance, today=today
            )


def test_one_hospital_never_sees_anothers_trend(demo):
    from savings.models import CalculationKind, SavingsCalculation

    today = timezone.localdate()
    # Make the other hospital's figures differ: its year calculations save a million more.
    with scope(organization=demo["lakeview"]):
        for calc in SavingsCalculation.objects.filter(kind=CalculationKind.YEAR):
            calc.gross_savings += Decimal("1000000.00")
            calc.save(update_fields=["gross_savings"])
    riverside, lakeview = _expected(demo["riverside"], today), _expected(demo["lakeview"], today)
    assert any(riverside[y]["gross"] != lakeview[y]["gross"] for y in riverside)
    mine = _csv(_client("executive@riverside.example").get("/o/riverside/dashboard/trend.csv"))
    theirs = _csv(_client("executive@lakeview.example").get("/o/lakeview/dashboard/trend.csv"))
    for year in riverside:
        assert mine[str(year)]["gross savings"] == _blank(riverside[year]["gross"])
        assert theirs[str(year)]["gross savings"] == _blank(lakeview[year]["gross"])
    outsider = _client("executive@riverside.example")
    assert outsider.get("/o/lakeview/dashboard/trend.csv").status_code == 404
    assert outsider.get("/o/lakeview/dashboard/").status_code == 404
