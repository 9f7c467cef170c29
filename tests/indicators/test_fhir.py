"""The FHIR R4 MeasureReport of an indicator, validated by fhir.resources (R4B model)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from fhir.resources.R4B.measurereport import MeasureReport
from pydantic import ValidationError

from indicators.criteria import MeasureDefinition, populations_evaluate
from indicators.fhir import MEASURE_POPULATION_SYSTEM, measure_report, measure_report_json

EXAMPLE_D = Path("/work/shared/examples/example_d/cases.csv")
MEASURE = "https://comanage.example/fhir/Measure/vte-prophylaxis"
VTE = MeasureDefinition(
    initial_population={
        "all": [
            {"field": "age", "op": ">=", "value": 18},
            {"field": "procedure", "op": "in", "value": ["TKA", "THA"]},
            {"field": "admission_type", "op": "=", "value": "elective"},
        ]
    },
    denominator_exclusions={
        "any": [
            {"field": "comfort_care_only", "op": "is_true"},
            {"field": "anticoagulated_on_admission", "op": "is_true"},
        ]
    },
    numerator={"field": "prophylaxis_by_pod1", "op": "is_true"},
    denominator_exceptions={"field": "medical_reason_no_prophylaxis", "op": "not_null"},
)


def example_d_report(**overrides) -> dict:
    result = populations_evaluate(VTE, pd.read_csv(EXAMPLE_D, dtype=str, keep_default_na=False))
    arguments = {
        "measure_url": MEASURE,
        "period_start": dt.date(2025, 1, 1),
        "period_end": dt.date(2025, 12, 31),
        "populations": result.counts,
        "score": result.score,
        "subject": "Organization/st-marys",
        "reporter": "Comanage programme administrator",
        "generated_at": dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC),
        "report_id": "vte-2025",
        "improvement_notation": "increase",
    }
    return measure_report(**(arguments | overrides))


def codes_and_counts(report: MeasureReport) -> dict[str, int]:
    return {p.code.coding[0].code: p.count for p in report.group[0].population}


def test_example_d_report_is_a_valid_r4_measure_report():
    report = MeasureReport.model_validate(example_d_report())
    assert report.status == "complete"
    assert report.type == "summary"
    assert report.measure == MEASURE
    assert codes_and_counts(report) == {
        "initial-population": 16,
        "denominator": 16,
        "denominator-exclusion": 2,
        "denominator-exception": 1,
        "numerator": 12,
        "numerator-exclusion": 0,
    }
    assert all(
        p.code.coding[0].system == MEASURE_POPULATION_SYSTEM for p in report.group[0].population
    )
    score = report.group[0].measureScore
    assert score.value == Decimal("92.31")
    assert (score.unit, score.system, score.code) == ("%", "http://unitsofmeasure.org", "%")
    assert report.subject.reference == "Organization/st-marys"
    assert report.reporter.display == "Comanage programme administrator"
    assert report.improvementNotation.coding[0].code == "increase"


def test_json_text_round_trips_with_the_score_as_a_number():
    text = measure_report_json(example_d_report())
    assert json.loads(text)["group"][0]["measureScore"]["value"] == pytest.approx(92.31)
    assert '"value": 92.31' in text
    report = MeasureReport.model_validate_json(text)
    assert report.group[0].measureScore.value == Decimal("92.31")
    assert report.date.isoformat().startswith("2026-01-15T09:30:00")


def test_no_score_leaves_out_the_measure_score():
    report = example_d_report(score=None, populations={"initial-population": 0, "denominator": 0})
    assert "measureScore" not in report["group"][0]
    parsed = MeasureReport.model_validate(report)
    assert parsed.group[0].measureScore is None
    assert codes_and_counts(parsed) == {"initial-population": 0, "denominator": 0}


@pytest.mark.parametrize("breakage", ["missing_period", "text_count", "unknown_element"])
def test_the_validator_rejects_a_broken_report(breakage):
    # Proves the parse above is a real check (fhir.resources does not bind status value sets,
    # so structure is what it enforces).
    report = example_d_report()
    if breakage == "missing_period":
        del report["period"]
    elif breakage == "text_count":
        report["group"][0]["population"][0]["count"] = "sixteen"
    else:
        report["group"][0]["score"] = 1
    with pytest.raises(ValidationError):
        MeasureReport.model_validate(report)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"populations": {"numerators": 1}}, "unknown population"),
        ({"populations": {"numerator": -1}}, "whole number"),
        ({"period_end": dt.date(2024, 1, 1)}, "before period_start"),
        ({"generated_at": dt.datetime(2026, 1, 1)}, "timezone-aware"),  # noqa: DTZ001
    ],
)
def test_it_refuses_bad_input(overrides, message):
    with pytest.raises(ValueError, match=message):
        example_d_report(**overrides)
