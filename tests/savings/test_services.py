"""savings_for_year and friends on small hand-checked data: baseline reset, the cap binding,
what-if overrides, projections, safeguard flags and termination for cause, frozen terms."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError

from agreements import models as am
from savings import services
from savings.engine import SavingsInputError
from savings.models import CalculationKind, SavingsCalculation, SavingsOpportunity
from tests.savings.helpers import (
    EXAMPLE_A,
    example_a_agreement,
    import_text,
    usage_csv,
    year,
)

pytestmark = pytest.mark.django_db
D = Decimal
ADAMS = "1000000004"


def _cases(prefix: str, count: int, quantity: str, first_day: dt.date) -> list[dict[str, str]]:
    return [
        {
            "case_id": f"{prefix}{i}",
            "physician_npi": ADAMS,
            "item_code": "A1",
            "quantity": quantity,
            "service_date": (first_day + dt.timedelta(days=i)).isoformat(),
            "notice_date": (first_day - dt.timedelta(days=5)).isoformat(),
        }
        for i in range(count)
    ]


@pytest.fixture
def two_years(world):
    """Base 2024: 4 cases x 2 A1 @100 (200/case). 2025: 4 cases x 1 (100/case).
    2026: 5 cases x 0.5 (50/case). Prices 100 both years. No fees, share 50%, cap 250."""
    agreement = example_a_agreement(world, cap=D("250.00"), admin_fee=D("0"))
    prices = "item_code,unit_cost\nA1,100\n"
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="base",
            base_year=2024,
            name="b.csv",
            content=usage_csv(_cases("b", 4, "2", dt.date(2024, 3, 1))),
        )
        for number, quantity, count in ((1, "1", 4), (2, "0.5", 5)):
            y = year(agreement, number)
            import_text(
                world,
                agreement,
                kind="prices",
                period="programme",
                programme_year=y,
                name=f"p{number}.csv",
                content=prices,
            )
            import_text(
                world,
                agreement,
                kind="usage",
                period="programme",
                programme_year=y,
                name=f"u{number}.csv",
                content=usage_csv(
                    _cases(f"y{number}-", count, quantity, dt.date(2024 + number, 2, 1))
                ),
            )
    return agreement


def test_year_two_resets_the_baseline_and_the_cap_binds(world, two_years):
    admin = world.users["administrator"]
    with world.scope():
        first = services.savings_calculation_run(programme_year=year(two_years, 1), user=admin)
        assert first.gross_savings == D("400.00")
        assert first.amount_paid == D("200.00")
        second = services.savings_for_year(programme_year=year(two_years, 2))
    result = second.result
    opp = result.opportunity("A")
    assert opp.baseline_source == "prior_year"
    assert opp.baseline_per_case == D("100")
    assert (opp.base_cases, opp.eligible_cases) == (4, 5)
    assert opp.raw_savings == D("250.00")
    assert opp.capped_savings == D("200.00")
    assert result.physician_pool == D("100.00")
    assert result.already_distributed == D("200.00")
    assert result.amount_paid == D("50.00")
    assert result.withheld_by_cap == D("50.00")
    assert result.cap_headroom == D("0.00")
    assert [p.amount for p in result.physicians if p.amount] == [D("16.67"), D("16.67"), D("16.66")]
    assert second.inputs["prior_usage"]["file"] == "u1.csv"
    assert second.inputs["already_distributed_sources"][0]["source"].startswith(
        "savings calculation"
    )


def test_already_distributed_can_be_given_by_the_caller(world, two_years):
    with world.scope():
        result = services.savings_for_year(
            programme_year=year(two_years, 2), already_distributed=D("0")
        ).result
    assert result.amount_paid == D("100.00")


def test_what_if_overrides_change_figures_without_touching_records(world, two_years):
    with world.scope():
        base = services.savings_for_year(programme_year=year(two_years, 1))
        lower_share = services.savings_for_year(
            programme_year=year(two_years, 1), overrides={"terms": {"physician_share_pct": "40"}}
        )
        fewer_items = services.savings_for_year(
            programme_year=year(two_years, 1), overrides={"quantity_pct": {"A1": "50"}}
        )
        dearer = services.savings_for_year(
            programme_year=year(two_years, 1), overrides={"prices": {"A1": "110"}}
        )
        assert am.AgreementTerms.objects.get(agreement=two_years).physician_share_pct == 50
    assert base.result.physician_pool == D("200.00")
    assert lower_share.result.physician_pool == D("160.00")
    assert fewer_items.result.opportunity("A").actual_cost == D("200.00")
    assert fewer_items.result.gross_savings == D("600.00")
    # The baseline is repriced (2 x 110 = 220/case); actual stays the recorded 100/case.
    assert dearer.result.gross_savings == D("480.00")
    assert len({base.inputs_checksum, lower_share.inputs_checksum}) == 2


def test_a_physician_share_above_fifty_percent_is_refused(world, two_years):
    with world.scope(), pytest.raises(ValidationError, match="above the maximum of 50") as caught:
        services.savings_for_year(
            programme_year=year(two_years, 1), overrides={"terms": {"physician_share_pct": "50.01"}}
        )
    assert list(caught.value.message_dict) == ["overrides.terms.physician_share_pct"]


def test_unknown_overrides_are_refused(world, two_years):
    with world.scope(), pytest.raises(ValidationError, match="unknown key.*'volume'") as caught:
        services.savings_for_year(programme_year=year(two_years, 1), overrides={"volume": 2})
    assert list(caught.value.message_dict) == ["overrides"]


def test_year_two_needs_year_one_usage_for_the_reset(world):
    agreement = example_a_agreement(world)
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="base",
            base_year=2024,
            name="b.csv",
            content=usage_csv(_cases("b", 2, "1", dt.date(2024, 3, 1))),
        )
        y2 = year(agreement, 2)
        import_text(
            world,
            agreement,
            kind="prices",
            period="programme",
            programme_year=y2,
            name="p.csv",
            content="item_code,unit_cost\nA1,100\n",
        )
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            programme_year=y2,
            name="u.csv",
            content=usage_csv(_cases("c", 2, "1", dt.date(2026, 3, 1))),
        )
        with pytest.raises(SavingsInputError, match="baseline reset"):
            services.savings_for_year(programme_year=y2)


def test_a_projection_uses_the_same_months_and_is_marked(world, two_years):
    with world.scope():
        projection = services.savings_calculation_run(
            programme_year=year(two_years, 2),
            user=None,
            kind=CalculationKind.PROJECTION,
            as_of=dt.date(2026, 2, 3),
        )
    # Year 2 to 3 Feb: cases y2-0..y2-2 (3 cases) against year 1 to 3 Feb (3 cases).
    opp = projection.result["opportunities"][0]
    assert (opp["eligible_cases"], opp["base_cases"]) == (3, 3)
    assert projection.result["fee_months"] == 1
    assert projection.kind == "projection" and projection.as_of == dt.date(2026, 2, 3)
    assert projection.projected_gross_savings == (
        D(projection.result["gross_savings"]) * 365 / 34
    ).quantize(D("0.01"))


# The year 2026 must have ended for a final calculation (spec: before its last day only
# projections run).
@time_machine.travel(dt.datetime(2027, 1, 15, 12, tzinfo=dt.UTC), tick=False)
def test_safeguard_flags_carry_their_figures_and_a_rerun_does_not_duplicate(world, two_years):
    admin = world.users["administrator"]
    with world.scope():
        services.savings_calculation_run(programme_year=year(two_years, 1), user=admin)
        services.savings_calculation_run(programme_year=year(two_years, 2), user=admin)
        flags = am.ComplianceFlag.objects.filter(kind="savings_federal_rise")
        assert flags.count() == 1
        flag = flags.get()
        assert flag.physician.npi == ADAMS
        assert (flag.data["base_federal_cases"], flag.data["current_federal_cases"]) == (4, 5)
        services.safeguard_flags_raise(
            calculation=SavingsCalculation.objects.filter(programme_year=year(two_years, 2)).get()
        )
        assert am.ComplianceFlag.objects.filter(kind="savings_federal_rise").count() == 1


def test_a_severity_fall_beyond_tolerance_raises_a_flag_with_its_figures(world):
    agreement = example_a_agreement(world, admin_fee=D("0"))
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="base",
            base_year=2024,
            name="b.csv",
            content=usage_csv(_cases("b", 4, "1", dt.date(2024, 3, 1))),
        )
        y1 = year(agreement, 1)
        import_text(
            world,
            agreement,
            kind="prices",
            period="programme",
            programme_year=y1,
            name="p.csv",
            content="item_code,unit_cost\nA1,100\n",
        )
        rows = _cases("c", 4, "1", dt.date(2025, 3, 1))
        for row in rows:
            row["severity_weight"] = "1.7"
        rows[0]["notice_date"] = ""
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            programme_year=y1,
            name="u.csv",
            content=usage_csv(rows),
        )
        services.savings_calculation_run(programme_year=y1, user=None)
        severity = am.ComplianceFlag.objects.get(kind="savings_severity")
        notice = am.ComplianceFlag.objects.get(kind="savings_patient_notice")
    assert severity.physician.npi == ADAMS
    assert severity.data["severity_change_pct"] == "-15.00"
    assert "2.0" in severity.message and "1.7" in severity.message
    assert notice.data["cases_without_notice"] == 1


# The year 2026 must have ended for a final calculation (spec: before its last day only
# projections run).
@time_machine.travel(dt.datetime(2027, 1, 15, 12, tzinfo=dt.UTC), tick=False)
def test_the_committee_terminates_for_cause_from_a_flag(world, two_years):
    admin = world.users["administrator"]
    with world.scope():
        services.savings_calculation_run(programme_year=year(two_years, 1), user=admin)
        services.savings_calculation_run(programme_year=year(two_years, 2), user=admin)
        flag = am.ComplianceFlag.objects.get(kind="savings_federal_rise")
        with pytest.raises(ValidationError):
            services.participation_terminate_for_cause(
                flag=flag, termination_date=dt.date(2026, 6, 30), reason=" ", user=admin
            )
        participation = services.participation_terminate_for_cause(
            flag=flag, termination_date=dt.date(2026, 6, 30), reason="Referral pattern", user=admin
        )
        flag.refresh_from_db()
        assert participation.for_cause and participation.termination_date == dt.date(2026, 6, 30)
        assert flag.resolved_at is not None and flag.resolved_by == admin
        after = services.savings_for_year(programme_year=year(two_years, 2)).result
    adams = next(p for p in after.physicians if p.npi == ADAMS)
    assert adams.entitlement == "forfeited_for_cause" and adams.amount == D("0.00")


def test_executed_agreements_freeze_opportunities_and_additions_are_amendments(world):
    agreement = example_a_agreement(world, status=am.AgreementStatus.EXECUTED, years=3)
    with world.scope():
        opportunity = SavingsOpportunity.objects.get(agreement=agreement, key="A")
        with pytest.raises(ValidationError, match="frozen"):
            services.opportunity_update(
                opportunity=opportunity, data={"savings_target": "1"}, user=None
            )
        added = services.opportunity_create(
            agreement=agreement,
            user=None,
            today=dt.date(2025, 6, 1),
            data={
                "key": "D",
                "name": "Stents",
                "case_types": "CATH",
                "item_codes": "S1",
                "savings_target": "5000",
                "base_year": 2024,
            },
        )
    assert not added.identified_at_signing
    assert added.effective_from_year.number == 2


def test_opportunity_validation_is_specific(world):
    agreement = example_a_agreement(world)
    with world.scope(), pytest.raises(ValidationError) as error:
        services.opportunity_create(
            agreement=agreement,
            user=None,
            data={
                "key": "Z",
                "name": "Nothing",
                "case_types": "",
                "item_codes": "",
                "savings_target": "-1",
                "base_year": 2024,
            },
        )
    assert set(error.value.message_dict) == {"case_types", "item_codes", "savings_target"}


def test_proposals_are_design_phase_only_and_do_not_earn_until_agreed(world, two_years):
    with world.scope():
        proposal = services.opportunity_propose_from_finding(
            agreement=two_years,
            user=None,
            key="P",
            name="Balloons again",
            case_type="CATH",
            item_codes=["C1"],
            savings_target=D("1234.00"),
            base_year=2024,
            finding="median",
        )
        result = services.savings_for_year(programme_year=year(two_years, 1)).result
        assert "P" not in [o.key for o in result.opportunities]
        services.opportunity_accept(opportunity=proposal, user=None)
        assert services.distribution_cap_proposed(agreement=two_years) == D("181234.00")


def test_row_order_of_the_imported_file_never_changes_the_figures(world):
    lines = (EXAMPLE_A / "usage_2025.csv").read_text().splitlines()
    header, rows = lines[0], lines[1:]
    checksums = set()
    for seed in (1, 2):
        agreement = example_a_agreement(world)
        random.Random(seed).shuffle(rows)
        with world.scope():
            import_text(
                world,
                agreement,
                kind="usage",
                period="base",
                base_year=2024,
                name="b.csv",
                content=(EXAMPLE_A / "usage_2024.csv").read_text(),
            )
            import_text(
                world,
                agreement,
                kind="prices",
                period="programme",
                programme_year=year(agreement, 1),
                name="p.csv",
                content=(EXAMPLE_A / "prices_2025.csv").read_text(),
            )
            import_text(
                world,
                agreement,
                kind="usage",
                period="programme",
                programme_year=year(agreement, 1),
                name=f"u{seed}.csv",
                content="\n".join([header, *rows]) + "\n",
            )
            result = services.savings_for_year(programme_year=year(agreement, 1)).result
        checksums.add(result.checksum())
        assert result.amount_paid == D("55888.01")
    assert len(checksums) == 1
