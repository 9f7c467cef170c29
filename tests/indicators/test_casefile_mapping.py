"""A case file in a registry's own layout (tests/data/exports/quality_registry_cases.csv:
title row, own headers, M/D/YYYY dates, Y/N flags) read through a mapping scores as example D."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from indicators import services
from indicators.casefile import CaseFileRefused
from tests.indicators.conftest import EXAMPLE_D

pytestmark = pytest.mark.django_db
D = Decimal
REGISTRY = (
    Path(__file__).resolve().parent.parent / "data" / "exports" / "quality_registry_cases.csv"
)
CANONICAL = EXAMPLE_D.read_text().splitlines()[0].split(",")


def _create(o, data: bytes, name: str = "registry.csv"):
    return services.case_import_create(
        agreement=o.agreement,
        programme_year=o.year,
        period=o.annual,
        data=data,
        filename=name,
        user=None,
        indicator_keys=["vte_prophylaxis"],
    )


def _columns(step):
    """The proposal, completed by position for the columns the names did not give away."""
    needed = {f["name"] for f in step["fields"]}
    proposed = {c["header"]: c["field"] for c in step["columns"]}
    for header, name in zip(step["header"], CANONICAL, strict=True):
        if not proposed[header] and name in needed:
            proposed[header] = name
    return proposed


def test_the_registry_extract_scores_as_example_d_through_the_mapping(ortho, media):
    with scopes_disabled():
        ci = _create(ortho, REGISTRY.read_bytes())
        step = services.case_import_mapping_step(case_import=ci)
        assert step["header_row"] == 2
        proposed = {c["header"]: c["field"] for c in step["columns"]}
        assert proposed["Encounter ID"] == "case_id"
        assert proposed["Discharge Date"] == "discharge_date"
        services.case_import_map(
            case_import=ci, user=None, columns=_columns(step), save_as="Quality registry extract"
        )
        assert ci.mapping_used["name"] == "Quality registry extract"
        outcome = services.case_import_apply(case_import=ci)
    result = outcome.results[0]
    assert result.display_value == D("92.31")
    assert (result.numerator, result.denominator, result.case_count) == (D(12), D(13), 13)
    assert result.counts["denominator_exclusion"] == 2
    assert result.counts["denominator_exception"] == 1


def test_a_bad_registry_date_names_the_row_and_the_registry_column(ortho, media):
    data = REGISTRY.read_bytes().replace(b"2/11/2025", b"2/30/2025")
    with scopes_disabled():
        ci = _create(ortho, data)
        step = services.case_import_mapping_step(case_import=ci)
        services.case_import_map(case_import=ci, user=None, columns=_columns(step))
        with pytest.raises(CaseFileRefused) as refused:
            services.case_import_apply(case_import=ci)
    problem = refused.value.problems.items[0]
    assert (problem.row, problem.column) == (3, "Discharge Date")
    assert "'2/30/2025'" in problem.message


def test_two_registry_columns_to_one_field_are_refused(ortho, media):
    with scopes_disabled():
        ci = _create(ortho, REGISTRY.read_bytes())
        step = services.case_import_mapping_step(case_import=ci)
        columns = _columns(step)
        columns["Patient Age"] = "case_id"
        with pytest.raises(ValidationError) as refused:
            services.case_import_map(case_import=ci, user=None, columns=columns)
    assert "two columns (Encounter ID, Patient Age) are mapped to one field" in " ".join(
        refused.value.messages
    )
