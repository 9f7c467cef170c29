"""What a hospital's systems read: an approved report's payment lines (JSON and CSV), every
figure of a run, and one number format across every JSON the API returns."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal

import pytest

from adjudication import services
from adjudication.models import PaymentLine
from comanage.core.serialise import api_numbers, number_kind
from tests.adjudication import conftest as adjudication
from tests.adjudication.conftest import advance
from tests.api.openapi import api_schema

pytestmark = pytest.mark.django_db
co_management = adjudication.co_management  # fixtures: example C recorded with its report
recorded = adjudication.recorded

ORG = "/api/v1/organizations/riverside"
MONEY = re.compile(r"^-?\d+\.\d{2}$")
PERCENT = re.compile(r"^-?\d+\.\d{4}$")


def _lines_url(report):  # type: ignore[no-untyped-def]
    return f"{ORG}/adjudication/reports/{report.pk}/payment-lines/"


@pytest.mark.parametrize(
    "steps", [(), ("review",), ("review", "submit"), ("review", "submit", "return")]
)
def test_payment_lines_before_approval_are_a_409(world, api, recorded, steps):
    report = advance(world, recorded.report, *steps)
    for fmt in ("json", "csv"):
        response = api("administrator").get(_lines_url(report), {"format": fmt})
        assert response.status_code == 409
        assert response["Content-Type"] == "application/json"  # errors keep one shape
        assert "from counsel's approval on" in response.json()["errors"][0]["message"]


def test_approved_report_exports_planned_lines_then_stored_ones(world, api, recorded):
    report = advance(world, recorded.report, "review", "submit", "approve")
    client = api("executive")
    body = client.get(_lines_url(report)).json()
    assert body["report"]["report_id"] == report.pk
    assert body["report"]["calculation_hash"] == report.calculation_hash
    assert body["report"]["programme_year"] == report.programme_year.label
    assert body["total"] == "700000.00" and body["authorised"] is False
    assert {line["line_status"] for line in body["lines"]} == {"planned"}
    assert all(MONEY.match(line["amount"]) for line in body["lines"])
    planned = [(line["line_key"], line["amount"]) for line in body["lines"]]

    report = advance(world, report, "authorise")
    with world.scope():
        line = PaymentLine.objects.filter(report=report).order_by("position").first()
        services.payment_record(
            line=line,
            paid_amount=line.amount,
            paid_on=dt.date(2026, 1, 20),
            reference="=HYPERLINK(1)",
            user=world.users["administrator"],
        )
    body = client.get(_lines_url(report), {"format": "json"}).json()
    assert [(ln["line_key"], ln["amount"]) for ln in body["lines"]] == planned
    first = body["lines"][0]
    assert (first["line_status"], first["paid_amount"], first["paid_on"]) == (
        "paid",
        f"{line.amount:.2f}",
        "2026-01-20",
    )
    assert first["practice_tax_id"] == (report.agreement.practice.tax_id or None)
    assert body["paid"] == f"{line.amount:.2f}" and body["authorised"] is True

    response = client.get(_lines_url(report), {"format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == len(planned)
    assert rows[0]["report_id"] == str(report.pk)
    assert rows[0]["calculation_hash"] == report.calculation_hash
    assert rows[0]["amount"] == f"{line.amount:.2f}"
    assert rows[0]["reference"] == "'=HYPERLINK(1)"  # a formula never reaches a spreadsheet
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal("700000.00")


def test_shared_savings_lines_carry_each_physicians_npi(world, api, recorded):
    """Distribution lines name the physician: their NPI is in the export."""
    report = advance(world, recorded.report, "review", "submit", "approve", "authorise")
    with world.scope():
        PaymentLine.objects.filter(report=report, position=0).update(physician=world.physician)
    first = api("administrator").get(_lines_url(report)).json()["lines"][0]
    assert first["npi"] == world.physician.npi


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("administrator", 200),
        ("executive", 200),
        ("counsel", 200),
        ("ceo", 200),
        ("auditor", 200),
        ("physician", 403),
        ("outsider", 404),
        ("anonymous", 401),
    ],
)
def test_payment_lines_and_figures_role_matrix(world, api, recorded, who, expected):
    report = advance(world, recorded.report, "review", "submit", "approve")
    client = api(who)
    assert client.get(_lines_url(report)).status_code == expected
    assert client.get(_lines_url(report), {"format": "csv"}).status_code == expected
    figures = client.get(f"{ORG}/adjudication/runs/{recorded.run.pk}/figures/")
    assert figures.status_code == expected


def test_run_figures_has_every_figure(world, api, recorded):
    run = recorded.run
    body = api("counsel").get(f"{ORG}/adjudication/runs/{run.pk}/figures/").json()
    assert body["calculation_hash"] == run.calculation_hash
    assert body["results"]["total_compensation"] == "700000.00"
    earned = [i["earned"] for i in body["figures"]["incentive"]["indicators"]]
    assert earned == ["88235.29", "70588.24", "94117.65", "47058.82", "0.00"]
    assert sum(
        Decimal(d["amount"]) for d in body["distributions"] if d["component"] == "incentive"
    ) == Decimal("300000.00")
    with world.scope():
        run.refresh_from_db()
    assert run.calculation_hash == body["calculation_hash"]  # formatting never touches it


def test_the_report_page_links_the_exports_once_approved(world, recorded):
    client = world.client("administrator")
    page = f"/o/riverside/adjudication/reports/{recorded.report.pk}/"
    url = _lines_url(recorded.report)
    assert url not in client.get(page).content.decode()
    advance(world, recorded.report, "review", "submit", "approve")
    html = client.get(page).content.decode()
    assert f"{url}?format=csv" in html and f"{url}?format=json" in html


# ---------------------------------------------------------------------------------------------
# One number format


def test_the_rule_formats_money_and_percentages():
    data = {
        "tiers": [
            {"payout_pct": "75.0000"},
            {"payout_pct": "87.500000000000"},
            {"payout_pct": "0"},
            {"payout_pct": Decimal("12.5")},
        ],
        "amount": "5",
        "paid_amount": None,
        "total": 17,
        "percentile": 50,
        "cost_per_case": "1234.5678",
        "note": "amount",
        "gross_savings": "-1.5",
    }
    assert api_numbers(data) == {
        "tiers": [
            {"payout_pct": "75.0000"},
            {"payout_pct": "87.5000"},
            {"payout_pct": "0.0000"},
            {"payout_pct": "12.5000"},
        ],
        "amount": "5.00",
        "paid_amount": None,
        "total": 17,
        "percentile": 50,
        "cost_per_case": "1234.5678",
        "note": "amount",
        "gross_savings": "-1.50",
    }


def _bad_numbers(value, key="", path=""):  # type: ignore[no-untyped-def]
    """Every money or percentage value (by its key) not in the one format."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _bad_numbers(v, str(k), f"{path}.{k}")
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            yield from _bad_numbers(v, key, f"{path}[{i}]")
        return
    kind = number_kind(key) if key else None
    if kind is None or value is None:
        return
    pattern = PERCENT if kind == "percent" else MONEY
    if not (isinstance(value, str) and pattern.match(value)):
        yield f"{path} ({kind}) = {value!r}"


def test_every_json_response_uses_one_number_format(world, api, recorded):
    """Walk every GET operation of the schema (lists, then the detail and the GET actions of
    their first row) and check each money and percentage value."""
    report = advance(world, recorded.report, "review", "submit", "approve", "authorise")
    schema = api_schema()
    client = api("administrator")
    ids = {"adjudication/runs": recorded.run.pk, "adjudication/reports": report.pk}
    checked: list[str] = []
    problems: list[str] = []
    for path, operations in schema["paths"].items():
        if "get" not in operations or "organizations/{org_slug}" not in path:
            continue
        url = path.replace("{org_slug}", "riverside")
        params = re.findall(r"\{(\w+)\}", url)
        if params == ["id"]:
            collection = url.split("/riverside/", 1)[1].split("/{id}")[0]
            pk = ids.get(collection)
            if pk is None:
                listing = client.get(url.split("{id}")[0])
                results = listing.json().get("results", []) if listing.status_code == 200 else []
                if not results or "id" not in results[0]:
                    continue
                pk = results[0]["id"]
            url = url.replace("{id}", str(pk))
        elif params:
            continue
        response = client.get(url)
        if response.status_code != 200 or "json" not in response.get("Content-Type", ""):
            continue
        checked.append(url)
        problems += [f"{url}: {p}" for p in _bad_numbers(response.json())]
    assert any("/figures/" in u for u in checked) and any("payment-lines" in u for u in checked)
    assert not problems, "\n".join(problems)
