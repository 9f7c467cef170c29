"""Runs stored before a field existed read with the field's explicit default, and what the
adjudication services build from them (payment lines, approval checks, what-if rows, webhook
payloads, changes in words) is the same as from the current shape."""

from __future__ import annotations

from decimal import Decimal

import pytest

from adjudication import services
from adjudication.changes import _Names
from adjudication.models import CalculationRun
from adjudication.read_models import FMVRead, ParticipantRead, RunRead
from comanage.core.read_models import StoredShapeError
from comanage.core.webhooks.services import _summary

OLD_FMV = {  # recorded before the fixed portion, the id and the percentiles were stored
    "valuator": "Valuation Partners",
    "issue_date": "2024-11-01",
    "effective_start": "2025-01-01",
    "effective_end": "2026-12-31",
    "total_max_annual": "900000.00",
    "fixed_mode": "annual",
    "fixed_annual": "400000.00",
    "max_incentive": "400000.00",
    "justification": "",
}


def test_an_fmv_opinion_recorded_without_its_fixed_portion_reads_it_as_none():
    fmv = FMVRead.from_stored(OLD_FMV)
    assert fmv.total_max_annual == Decimal("900000.00")
    assert fmv.max_incentive == Decimal("400000.00")
    assert fmv.fixed_portion is None and fmv.rate_p75 is None and fmv.id is None
    assert fmv.effective_end.isoformat() == "2026-12-31"  # type: ignore[union-attr]


def test_an_fmv_opinion_without_its_maximum_is_an_error_naming_it():
    with pytest.raises(StoredShapeError, match="total_max_annual"):
        FMVRead.from_stored({"valuator": "Valuation Partners"})


def test_a_run_without_an_fmv_opinion_or_participants_reads_none_and_empty():
    read = RunRead(kind="shared_savings", results={}, figures={}, inputs={"savings": "x"})
    assert read.fmv is None
    assert read.participants == ()
    assert read.savings_inputs == {}  # not a mapping: nothing recorded to look into


def test_participants_recorded_before_npi_and_ownership_read_with_defaults():
    (p,) = RunRead(
        kind="co_management",
        results={},
        figures={},
        inputs={"participants": [{"physician_id": 7, "first_name": "Ann", "last_name": "Lee"}]},
    ).participants
    assert p == ParticipantRead(physician_id=7, first_name="Ann", last_name="Lee")
    assert p.npi == "" and p.ownership_pct is None and p.year_days == 0
    assert p.name == "Dr Ann Lee"


def test_the_changes_name_co_management_physicians_from_the_recorded_participants():
    read = RunRead(
        kind="co_management",
        results={},
        figures={},
        inputs={"participants": [{"physician_id": 7, "first_name": "", "last_name": "Lee"}]},
    )
    assert _Names([read]).physicians == {"7": "Dr Lee"}


def test_what_if_rows_say_nothing_for_a_total_the_official_run_did_not_record():
    official = RunRead(
        kind="co_management",
        results={"kind": "co_management", "total_to_pay": "381000.00"},
        figures={},
    )
    scenario = RunRead(
        kind="co_management",
        results={
            "kind": "co_management",
            "total_to_pay": "391000.50",
            "fmv_headroom": "509000.00",
        },
        figures={},
    )
    rows = services._scenario_total_rows(official, scenario)
    assert rows == [
        {
            "key": "fmv_headroom",
            "label": "Fmv headroom",
            "official": None,
            "scenario": "509000.00",
            "difference": None,
        },
        {
            "key": "total_to_pay",
            "label": "Total to pay",
            "official": "381000.00",
            "scenario": "391000.50",
            "difference": "10000.50",
        },
    ]
    assert services._scenario_indicator_rows(official, scenario) == []


def _old_shape(run: CalculationRun) -> None:
    """Store the run as an older version of the code did: no fixed-fee notes, no FMV totals,
    no fixed portion in the FMV opinion, flags without ``blocking``."""
    figures = dict(run.figures)
    figures["fixed_fee"] = {
        "lines": [
            {k: v for k, v in line.items() if k != "note"}
            for line in run.figures["fixed_fee"]["lines"]
        ]
    }
    results = {k: v for k, v in run.results.items() if not k.startswith("fmv_")}
    inputs = dict(run.inputs)
    inputs["fmv"] = {k: v for k, v in run.inputs["fmv"].items() if k != "fixed_portion"}
    flags = [{k: v for k, v in flag.items() if k != "blocking"} for flag in run.flags]
    CalculationRun.objects.filter(pk=run.pk).update(
        figures=figures, results=results, inputs=inputs, flags=flags
    )


def _plan(report):  # type: ignore[no-untyped-def]
    return [
        (line.line_key, line.kind, line.payee, line.description, line.amount)
        for line in services.payment_lines_plan(report=report)
    ]


@pytest.mark.django_db
def test_an_old_shaped_run_plans_the_same_payments_and_approval_checks(world, recorded):
    with world.scope():
        report = recorded.report
        plan = _plan(report)
        blockers = services.report_approval_blockers(report=report)
        assert plan[-1][:2] == ("incentive", "incentive")
        assert plan[-1][4] == Decimal(recorded.run.results["incentive_earned"])
        assert sum((p[4] for p in plan), Decimal(0)) == Decimal(
            recorded.run.results["total_to_pay"]
        )
        _old_shape(recorded.run)
        old = type(report).objects.select_related("run", "agreement__practice").get(pk=report.pk)
        assert old.run.read.totals.fmv_headroom is None
        assert old.run.read.fmv is not None and old.run.read.fmv.fixed_portion is None
        assert all(line.note == "" for line in old.run.read.fixed_fee_lines)
        assert _plan(old) == plan
        assert services.report_approval_blockers(report=old) == blockers


@pytest.mark.django_db
def test_the_webhook_payload_reads_the_total_a_run_recorded_and_none_when_it_recorded_none(
    world, recorded
):
    with world.scope():
        report = recorded.report
        expected = f"{Decimal(recorded.run.results['total_compensation']):.2f}"
        assert _summary(report)["total_compensation"] == expected
        results = {k: v for k, v in recorded.run.results.items() if k != "total_compensation"}
        CalculationRun.objects.filter(pk=recorded.run.pk).update(results=results)
        old = type(report).objects.get(pk=report.pk)
        assert _summary(old)["total_compensation"] is None


@pytest.mark.django_db
def test_the_fmv_summary_of_an_old_shaped_run_shows_the_same_figures_and_a_dash(world, recorded):
    from django.template.loader import render_to_string

    from adjudication import pdf

    with world.scope():
        current = pdf.fmv_context(run=recorded.run)
        fmv = recorded.run.read.fmv
        assert fmv is not None and fmv.fixed_portion is not None
        assert current["fixed_plus_incentive"] == str(fmv.fixed_portion + fmv.max_incentive)
        assert current["within_max"] is (
            fmv.fixed_portion + fmv.max_incentive <= fmv.total_max_annual
        )
        _old_shape(recorded.run)
        old = pdf.fmv_context(run=CalculationRun.objects.get(pk=recorded.run.pk))
        # No fixed portion was recorded: it counts as nothing and is shown as unknown.
        assert old["fmv"].fixed_portion is None
        assert old["fixed_plus_incentive"] == str(fmv.max_incentive)
        html = render_to_string("adjudication/pdf/fmv.html", {"c": old, "header": pdf._header(old)})
    assert "—" in html


def test_a_context_recorded_without_terms_or_the_agreement_details_reads_with_defaults():
    context = RunRead(
        kind="co_management",
        results={},
        figures={},
        inputs={
            "context": {
                "agreement": {"id": 3, "name": "Orthopedic co-management"},
                "programme_year": {
                    "id": 9,
                    "number": 1,
                    "start": "2025-01-01",
                    "end": "2025-12-31",
                    "label": "Year 1 (2025)",
                },
            }
        },
    ).context
    assert context.agreement.name == "Orthopedic co-management"
    assert context.agreement.practice == "" and context.agreement.term_start is None
    assert context.programme_year.end.isoformat() == "2025-12-31"
    assert context.terms.annual_fixed_fee is None and context.terms.quality_gate is None


def test_a_context_without_its_programme_year_is_an_error_naming_it():
    read = RunRead(
        kind="co_management",
        results={},
        figures={},
        inputs={"context": {"agreement": {"id": 3, "name": "A"}}},
    )
    with pytest.raises(StoredShapeError, match="programme_year"):
        read.context  # noqa: B018
