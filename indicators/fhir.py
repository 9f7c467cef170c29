"""A computed indicator as a FHIR R4 ``MeasureReport`` (summary), for exchange with quality
systems and registries.

The resource is built as a plain dict (the shape of its JSON); numbers stay ``Decimal`` so no
float ever touches a score, and ``measure_report_json`` writes them as JSON numbers. The tests
parse the result with ``fhir.resources.R4B`` (MeasureReport is unchanged between R4 and R4B).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from comanage.core.money import round_money, to_decimal

MEASURE_POPULATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-population"
IMPROVEMENT_NOTATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/measure-improvement-notation"
UCUM = "http://unitsofmeasure.org"

# FHIR population code -> display, in the order the spec walks the populations.
POPULATION_CODES: dict[str, str] = {
    "initial-population": "Initial Population",
    "denominator": "Denominator",
    "denominator-exclusion": "Denominator Exclusion",
    "denominator-exception": "Denominator Exception",
    "numerator": "Numerator",
    "numerator-exclusion": "Numerator Exclusion",
    "measure-population": "Measure Population",
    "measure-population-exclusion": "Measure Population Exclusion",
}

# The engine's count names (``PopulationResult.counts``) are the codes with underscores.
_ENGINE_NAMES = {code.replace("-", "_"): code for code in POPULATION_CODES}
_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _population_code(name: str) -> str:
    if name in POPULATION_CODES:
        return name
    if name in _ENGINE_NAMES:
        return _ENGINE_NAMES[name]
    raise ValueError(f"unknown population {name!r}; use one of {sorted(POPULATION_CODES)}")


def _reference(value: str) -> dict[str, str]:
    """``Organization/42`` becomes a reference; anything else is shown as a display name."""
    return {"reference": value} if _REFERENCE.match(value) else {"display": value}


def measure_report(
    *,
    measure_url: str,
    period_start: dt.date,
    period_end: dt.date,
    populations: Mapping[str, int],
    score: Decimal | None,
    subject: str | None = None,
    reporter: str | None = None,
    generated_at: dt.datetime | None = None,
    report_id: str | None = None,
    score_unit: str = "%",
    score_ucum_code: str | None = "%",
    improvement_notation: Literal["increase", "decrease"] | None = None,
) -> dict[str, Any]:
    """A FHIR R4 summary ``MeasureReport`` for one indicator and period.

    ``populations`` maps population names (FHIR codes such as ``denominator-exclusion`` or the
    engine's ``denominator_exclusion``) to counts. ``score`` is the unrounded engine score; the
    report carries the two-decimal figure people see (spec section 2), and no ``measureScore``
    at all when there is no score (spec section 3: a zero denominator is not 0%).
    ``subject``/``reporter`` are ``Type/id`` references or display names.
    """
    if period_end < period_start:
        raise ValueError("period_end is before period_start")
    if generated_at is not None and generated_at.tzinfo is None:
        raise ValueError("generated_at must be timezone-aware (FHIR dateTime needs an offset)")
    counts: dict[str, int] = {}
    for name, count in populations.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"population {name!r} count must be a whole number ≥ 0")
        counts[_population_code(name)] = count

    group: dict[str, Any] = {
        "population": [
            {
                "code": {
                    "coding": [
                        {
                            "system": MEASURE_POPULATION_SYSTEM,
                            "code": code,
                            "display": display,
                        }
                    ]
                },
                "count": counts[code],
            }
            for code, display in POPULATION_CODES.items()
            if code in counts
        ]
    }
    if score is not None:
        quantity: dict[str, Any] = {"value": round_money(to_decimal(score)), "unit": score_unit}
        if score_ucum_code:
            quantity |= {"system": UCUM, "code": score_ucum_code}
        group["measureScore"] = quantity

    report: dict[str, Any] = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "summary",
        "measure": measure_url,
        "period": {"start": period_start.isoformat(), "end": period_end.isoformat()},
        "group": [group],
    }
    if report_id:
        report["id"] = report_id
    if subject:
        report["subject"] = _reference(subject)
    if reporter:
        report["reporter"] = _reference(reporter)
    if generated_at is not None:
        report["date"] = generated_at.isoformat()
    if improvement_notation:
        report["improvementNotation"] = {
            "coding": [{"system": IMPROVEMENT_NOTATION_SYSTEM, "code": improvement_notation}]
        }
    return report


# A marker no real text carries (json escapes the NUL), replaced by the bare number afterwards.
_NUMBER_MARK = "\u0000decimal:"
_MARKED = re.compile(r'"\\u0000decimal:([-+0-9.Ee]+)"')


def measure_report_json(report: Mapping[str, Any]) -> str:
    """The report as JSON text, Decimals written as JSON numbers with their exact digits."""

    def mark(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: mark(v) for k, v in value.items()}
        if isinstance(value, list):
            return [mark(v) for v in value]
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise ValueError(f"{value} is not a JSON number")
            return f"{_NUMBER_MARK}{value}"
        return value

    return _MARKED.sub(lambda m: m.group(1), json.dumps(mark(report)))


__all__ = ["POPULATION_CODES", "measure_report", "measure_report_json"]
