"""Spec 4 edge cases end to end: through the real import, the calculation service, the stored
result, the compliance flags and the calculation page. Each test quotes the spec line it checks.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django_scopes import scopes_disabled

from agreements import models as am
from agreements.models import ComplianceFlag
from savings import services
from tests import factories as f
from tests.savings.helpers import example_a_agreement, import_text, usage_csv, year

pytestmark = pytest.mark.django_db
D = Decimal
ADAMS = "1000000004"
PRICES = "item_code,unit_cost\nA1,100.08\n"


def _one_case_year(
    world,
    agreement,
    *,
    rows: list[dict[str, str]],
    prices: str = PRICES,
    base_rows: list[dict[str, str]] | None = None,
):
    """Base 2024: one case of Adams using one A1; year 1: ``rows``; A1 priced ``prices``."""
    base = base_rows or [
        {
            "case_id": "b1",
            "physician_npi": ADAMS,
            "item_code": "A1",
            "service_date": "2024-03-01",
            "notice_date": "2024-02-20",
        }
    ]
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="base",
            base_year=2024,
            name="b.csv",
            content=usage_csv(base),
        )
        y = year(agreement, 1)
        import_text(
            world,
            agreement,
            kind="prices",
            period="programme",
            programme_year=y,
            name="p.csv",
            content=prices,
        )
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            programme_year=y,
            name="u.csv",
            content=usage_csv(rows),
        )


def test_two_physicians_of_the_same_name_get_leftover_cents_in_npi_order_not_id_order(world):
    """Spec 4 edge case: "Leftover cents. The fixed order is last name, first name, then NPI
    (never a database id)." Two Dr Ann Smiths with ids 99 and 100: as text "100" < "99", but
    the NPI of 99 is the lower one, so 99 takes the cent."""
    agreement = example_a_agreement(world, admin_fee=D("0"))
    with scopes_disabled():
        for pk, npi in ((99, f._valid_npi(9001)), (100, f._valid_npi(9002))):
            smith = f.PhysicianFactory(
                organization=world.org, pk=pk, npi=npi, last_name="Smith", first_name="Ann"
            )
            f.ParticipationFactory(
                agreement=agreement, physician=smith, join_date=dt.date(2025, 1, 1)
            )
    assert f._valid_npi(9001) < f._valid_npi(9002)
    _one_case_year(
        world,
        agreement,
        rows=[{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1", "unit_cost": "100.00"}],
    )
    with world.scope():
        calc = services.savings_calculation_run(
            programme_year=year(agreement, 1), user=world.users["administrator"]
        )
    result = calc.result
    # Pool 0.04 over Adams, Baker, Clark and the two Smiths (Diaz forfeits for cause): the four
    # leftover cents go to Adams, Baker, Clark, then the Smith with the lower NPI.
    assert result["amount_paid"] == "0.04"
    paid = {row["physician_id"]: row["amount"] for row in result["physicians"]}
    assert (paid["99"], paid["100"]) == ("0.01", "0.00")
    [note] = [n for n in result["rule_notes"] if n["rule"] == "4.edge.leftover-cents"]
    assert "Smith (NPI " + f._valid_npi(9001) + ")" in note["text"]


def test_a_case_dated_by_its_earliest_row_and_a_case_whose_rows_disagree_is_refused(world):
    """Spec 4 edge case: "A case is dated by its earliest service date. All rows of one case
    must agree on case type, physician, payer, federal flag, notice and opt-out; an import
    holding a case whose rows disagree is refused, naming the case and the rows." """
    agreement = example_a_agreement(world, admin_fee=D("0"))
    bad = [
        {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1"},
        {"case_id": "c2", "physician_npi": ADAMS, "item_code": "A1"},
        {"case_id": "c2", "physician_npi": ADAMS, "item_code": "A2", "payer": "aetna"},
    ]
    with world.scope(), pytest.raises(services.ImportRefused) as refused:
        import_text(
            world,
            agreement,
            kind="usage",
            period="base",
            base_year=2024,
            name="bad.csv",
            content=usage_csv(bad).replace("2025-", "2024-"),
        )
    messages = [p["message"] for p in refused.value.problems.items]
    assert (
        "the rows of case c2 disagree on payer (rows 3, 4): all rows of one case must agree"
        in messages
    )
    # Dr Diaz (example A) was terminated for cause on 2025-08-15: a case with a row on 08-10 and
    # one on 08-16 is dated 08-10 and counts.
    diaz = "1000000038"
    rows = [
        {
            "case_id": "d1",
            "physician_npi": diaz,
            "item_code": "A1",
            "unit_cost": "100.00",
            "service_date": "2025-08-16",
        },
        {
            "case_id": "d1",
            "physician_npi": diaz,
            "item_code": "A2",
            "quantity": "0",
            "service_date": "2025-08-10",
        },
    ]
    with scopes_disabled():
        assert am.Physician.objects.filter(npi=diaz, last_name="Diaz").exists()
    _one_case_year(world, agreement, rows=rows, prices="item_code,unit_cost\nA1,100.08\nA2,1\n")
    with world.scope():
        result = services.savings_for_year(programme_year=year(agreement, 1)).result
    opp = result.opportunity("A")
    assert (opp.eligible_cases, opp.post_termination_cases) == (1, 0)


def test_a_joiner_is_paid_pro_rata_and_the_page_says_which_rule_applied(world):
    """Spec 4 edge case: "a physician who joins during the year always gets a pro-rata share";
    and "A case belongs to its physician's participation only between the join date and the
    leave or termination date, inclusive". The calculation page names the rule."""
    agreement = example_a_agreement(world, admin_fee=D("0"))
    with scopes_disabled():
        chen = f.PhysicianFactory(
            organization=world.org, npi=f._valid_npi(9007), last_name="Chen", first_name="Li"
        )
        f.ParticipationFactory(agreement=agreement, physician=chen, join_date=dt.date(2025, 4, 1))
    rows = [
        {"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1", "unit_cost": "100.00"},
        {
            "case_id": "c2",
            "physician_npi": chen.npi,
            "item_code": "A1",
            "unit_cost": "100.00",
            "service_date": "2025-03-15",
        },
    ]
    _one_case_year(world, agreement, rows=rows)
    with world.scope():
        calc = services.savings_calculation_run(
            programme_year=year(agreement, 1), user=world.users["administrator"]
        )
    texts = [n["text"] for n in calc.result["rule_notes"]]
    assert "Dr Chen: joined Apr 1, 2025, 275 of 365 days." in texts
    assert (
        "Dr Chen: 1 case(s) before joining on Apr 1, 2025 not eligible in Year 1 · 2025." in texts
    )
    assert calc.result["opportunities"][0]["eligible_cases"] == 1
    page = world.client("administrator").get(
        reverse("savings_calculation", args=[world.org.slug, agreement.pk, calc.pk])
    )
    assert page.status_code == 200
    html = page.content.decode()
    assert "Rules applied" in html and "Dr Chen: joined Apr 1, 2025, 275 of 365 days." in html
    assert "Leavers and joiners</span>" in html and "(rules, section 4, edge cases)" in html
    assert "4.edge." not in html


def test_nobody_entitled_stores_nothing_paid_and_raises_a_blocking_compliance_flag(world):
    """Spec 4 edge case: "When no physician is entitled to a share (all terminated for cause,
    or all forfeited), nothing is paid, the hospital keeps the pool, the cap is not consumed,
    and a blocking compliance flag says why." """
    agreement = example_a_agreement(world, admin_fee=D("0"), cap=D("500.00"))
    with scopes_disabled():
        am.Participation.objects.filter(agreement=agreement).update(
            termination_date=dt.date(2025, 12, 30), for_cause=True
        )
    _one_case_year(
        world,
        agreement,
        rows=[{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1", "unit_cost": "90.08"}],
    )
    with world.scope():
        calc = services.savings_calculation_run(
            programme_year=year(agreement, 1), user=world.users["administrator"]
        )
        flags = list(ComplianceFlag.objects.filter(agreement=agreement, kind="savings_no_entitled"))
    assert calc.physician_pool == D("5.00") and calc.amount_paid == D("0.00")
    assert calc.result["hospital_keeps"] == "10.00"
    assert calc.result["cap_headroom"] == "500.00"
    assert calc.result["withheld_no_entitled"] == "5.00"
    [flag] = flags
    assert flag.blocking and flag.resolved_at is None
    assert "no physician is entitled" in flag.message


def test_a_short_programme_year_carries_one_fee_per_started_month(world):
    """Spec 4 edge case: "A programme year of twelve months carries twelve monthly fees,
    whatever day it starts on; a shorter year carries one fee per started month." """
    agreement = example_a_agreement(world, admin_fee=D("10.00"), years=1)
    with scopes_disabled():
        am.ProgrammeYear.objects.filter(agreement=agreement).update(
            start=dt.date(2025, 1, 15), end=dt.date(2025, 6, 20)
        )
    _one_case_year(
        world,
        agreement,
        rows=[{"case_id": "c1", "physician_npi": ADAMS, "item_code": "A1", "unit_cost": "0.08"}],
        prices="item_code,unit_cost\nA1,1000.00\n",
    )
    with world.scope():
        computation = services.savings_for_year(programme_year=year(agreement, 1))
    assert computation.result.fee_months == 6  # 15 Jan .. 20 Jun: six started months
    assert computation.result.admin_fees == D("60.00")
    assert computation.inputs["fee_months"] == 6
    assert [n.rule for n in computation.result.rule_notes if n.rule == "4.edge.fee-months"]
