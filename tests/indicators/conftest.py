"""Indicator worlds: spec example C (five indicators) on org A of the shared ``world``."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from django_scopes import scopes_disabled

from agreements.models import AgreementTerms, ProgrammeYear
from indicators import services
from indicators.models import IndicatorDefinition, IndicatorTemplate
from indicators.selectors import periods_for_year
from tests import factories as f

EXAMPLE_D = Path("/work/shared/examples/example_d/cases.csv")
D = Decimal

# key, weight, min n (spec example C)
EXAMPLE_C = [
    ("ssi_joint", D(25), None),
    ("median_los", D(20), None),
    ("experience_top_box", D(20), None),
    ("vte_prophylaxis", D(20), 10),
    ("readmission_30d", D(15), 25),
]


@dataclass
class Ortho:
    agreement: object
    terms: AgreementTerms
    year: ProgrammeYear
    definitions: dict[str, IndicatorDefinition]

    @property
    def annual(self):  # type: ignore[no-untyped-def]
        return periods_for_year(programme_year=self.year)[0]

    def quarter(self, n: int):  # type: ignore[no-untyped-def]
        return periods_for_year(programme_year=self.year)[n]


def ortho_build(org, *, policy: str = "redistribute", tier_mode: str = "step") -> Ortho:  # type: ignore[no-untyped-def]
    with scopes_disabled():
        agreement = f.AgreementFactory(organization=org, name="Orthopedic co-management")
        terms = f.TermsFactory(
            agreement=agreement, small_denominator_policy=policy, tier_mode=tier_mode
        )
        year = f.ProgrammeYearFactory(agreement=agreement)
        definitions = {}
        for key, weight, minimum in EXAMPLE_C:
            template = IndicatorTemplate.objects.get(key=key)
            definition = services.definition_from_template(
                template=template, terms=terms, weight=weight
            )
            definition.minimum_denominator = minimum
            definition.save()
            definitions[key] = definition
    return Ortho(agreement, terms, year, definitions)


def example_c_results(o: Ortho, *, with_vte: bool = True) -> None:
    """SSI 1.2 (6/500), LOS 1.9, top-box 86.0 (430/500), readmission n = 18; VTE 12/13."""
    with scopes_disabled():
        p = o.annual
        d = o.definitions
        services.result_record(
            definition=d["ssi_joint"],
            programme_year=o.year,
            period=p,
            numerator=D(6),
            denominator=D(500),
            source_note="NHSN",
        )
        services.result_record(
            definition=d["median_los"],
            programme_year=o.year,
            period=p,
            value=D("1.9"),
            case_count=480,
            source_note="abstract",
        )
        services.result_record(
            definition=d["experience_top_box"],
            programme_year=o.year,
            period=p,
            numerator=D(430),
            denominator=D(500),
            source_note="HCAHPS",
        )
        services.result_record(
            definition=d["readmission_30d"],
            programme_year=o.year,
            period=p,
            numerator=D(1),
            denominator=D(18),
            source_note="claims",
        )
        if with_vte:
            services.result_record(
                definition=d["vte_prophylaxis"],
                programme_year=o.year,
                period=p,
                numerator=D(12),
                denominator=D(13),
                source_note="chart review",
            )


@pytest.fixture
def ortho(world) -> Ortho:  # type: ignore[no-untyped-def]
    return ortho_build(world.org)


@pytest.fixture
def media(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def day(s: str) -> dt.date:
    return dt.date.fromisoformat(s)
