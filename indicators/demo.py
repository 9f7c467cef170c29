"""Demo indicators (called by ``manage.py seed_demo`` after ``agreements.demo``, scopes off).

Orthopedic co-management: the five indicators of spec example C, 2024 somewhat worse, 2025
exactly as example C (VTE from the example D case file through the real import), quarterly
2026 interim results, benchmarks and one open action plan. Cardiac cath lab shared savings:
two key quality indicators within tolerance of their baselines.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from agreements.models import Agreement, ProgrammeYear
from agreements.selectors import terms_for_year

from . import services
from .models import IndicatorTemplate
from .selectors import definitions_in_force, periods_for_year

ORTHO = "Orthopedic Service Line Co-Management"
CATH = "Cardiac Cath Lab Shared Savings Programme"
EXAMPLE_D = Path("/work/shared/examples/example_d/cases.csv")
D = Decimal

# key, weight, minimum n, baseline, baseline period
ORTHO_INDICATORS = [
    ("ssi_joint", D(25), None, D("1.9"), "CY2023"),
    ("median_los", D(20), None, D("2.3"), "CY2023"),
    ("experience_top_box", D(20), None, D("74.0"), "CY2023"),
    ("vte_prophylaxis", D(20), 10, D("88.5"), "CY2023"),
    ("readmission_30d", D(15), 25, D("7.9"), "CY2023"),
]
# (numerator, denominator) or (value, n) per year
ORTHO_2024 = {
    "ssi_joint": (9, 520),
    "median_los": (D("2.1"), 505),
    "experience_top_box": (398, 510),
    "vte_prophylaxis": (41, 45),
    "readmission_30d": (3, 22),
}
ORTHO_2025 = {
    "ssi_joint": (6, 500),
    "median_los": (D("1.9"), 480),
    "experience_top_box": (430, 500),
    "readmission_30d": (1, 18),
}
ORTHO_2026_QUARTERS = [
    {
        "ssi_joint": (2, 130),
        "median_los": (D("1.95"), 121),
        "experience_top_box": (108, 130),
        "vte_prophylaxis": (11, 12),
        "readmission_30d": (0, 5),
    },
    {
        "ssi_joint": (1, 128),
        "median_los": (D("1.9"), 126),
        "experience_top_box": (111, 128),
        "vte_prophylaxis": (12, 13),
        "readmission_30d": (1, 6),
    },
]
BENCHMARKS = {
    "ssi_joint": [("NHSN national", "2023", 50, D("1.3")), ("NHSN national", "2023", 25, D("0.8"))],
    "median_los": [("Premier peer hospitals", "2023", 50, D("2.0"))],
    "experience_top_box": [
        ("HCAHPS national", "2023", 50, D("72.0")),
        ("HCAHPS national", "2023", 90, D("84.0")),
    ],
    "vte_prophylaxis": [("SCIP national", "2015", 50, D("97.0"))],
    "readmission_30d": [("CMS national", "2023", 50, D("5.4"))],
}


def _year(agreement: Agreement, year: int) -> ProgrammeYear | None:
    return ProgrammeYear.objects.filter(agreement=agreement, start__year=year).first()


def _enter(
    definition: Any, year: ProgrammeYear, period: Any, figures: tuple, note: str, user: Any
) -> None:
    first, second = figures
    if definition.kind == "continuous_variable":
        services.result_record(
            definition=definition,
            programme_year=year,
            period=period,
            value=first,
            case_count=second,
            source_note=note,
            user=user,
        )
    else:
        services.result_record(
            definition=definition,
            programme_year=year,
            period=period,
            numerator=D(first),
            denominator=D(second),
            source_note=note,
            user=user,
        )


def _definitions(agreement: Agreement, year: ProgrammeYear, spec: list, user: Any) -> dict:
    terms = terms_for_year(programme_year=year)
    existing = {d.key: d for d in definitions_in_force(programme_year=year)}
    frozen = agreement.status
    # Seeding sets the terms before execution, as happens in practice; restore the status.
    if agreement.is_frozen:
        Agreement.objects.filter(pk=agreement.pk).update(status="draft")
        agreement.refresh_from_db()
    try:
        for key, weight, minimum, baseline, period in spec:
            if key in existing:
                continue
            template = IndicatorTemplate.objects.get(key=key)
            definition = services.definition_from_template(
                template=template, terms=terms, weight=weight, user=user
            )
            definition.minimum_denominator = minimum
            definition.baseline_value = baseline
            definition.baseline_period = period
            services.definition_save(definition=definition, user=user)
            existing[key] = definition
    finally:
        Agreement.objects.filter(pk=agreement.pk).update(status=frozen)
        agreement.refresh_from_db()
    return existing


def _ortho(agreement: Agreement, user: Any, stdout: Any) -> None:
    years = {y: _year(agreement, y) for y in (2024, 2025, 2026)}
    first = next((y for y in years.values() if y is not None), None)
    if first is None:
        stdout.write("  indicators: the orthopedic agreement has no programme years; skipped.")
        return
    definitions = _definitions(agreement, first, ORTHO_INDICATORS, user)
    for key, rows in BENCHMARKS.items():
        for source, period, percentile, value in rows:
            services.benchmark_create(
                definition=definitions[key],
                source=source,
                period=period,
                percentile=percentile,
                value=value,
            )
    for number, figures in ((2024, ORTHO_2024), (2025, ORTHO_2025)):
        year = years[number]
        if year is None:
            continue
        in_force = {d.key: d for d in definitions_in_force(programme_year=year)}
        annual = periods_for_year(programme_year=year)[0]
        for key, values in figures.items():
            _enter(in_force[key], year, annual, values, f"{number} annual quality report", user)
        if number == 2025 and EXAMPLE_D.exists():
            case_import = services.case_import_create(
                agreement=agreement,
                programme_year=year,
                period=annual,
                data=EXAMPLE_D.read_bytes(),
                filename="vte_cases_2025.csv",
                user=user,
                indicator_keys=["vte_prophylaxis"],
            )
            outcome = services.case_import_apply(case_import=case_import, user=user)
            stdout.write(
                f"  indicators: VTE 2025 from example D = "
                f"{outcome.results[0].display_value}% (n={outcome.results[0].case_count})"
            )
    year = years[2026]
    if year is not None:
        in_force = {d.key: d for d in definitions_in_force(programme_year=year)}
        quarters = periods_for_year(programme_year=year)[1:]
        for quarter, figures in zip(quarters, ORTHO_2026_QUARTERS, strict=False):
            for key, values in figures.items():
                _enter(
                    in_force[key], year, quarter, values, f"{quarter.label} interim dashboard", user
                )
        vte = in_force["vte_prophylaxis"]
        plan = services.action_plan_create(
            definition=vte,
            programme_year=year,
            title="VTE prophylaxis order set",
            owner="Dr Ann Adams, orthopedic quality lead",
            due_date=dt.date(2026, 9, 30),
            user=user,
            steps=[
                {
                    "description": "Make prophylaxis the default in the TKA/THA post-op order set",
                    "due_date": dt.date(2026, 7, 15),
                    "owner": "Pharmacy & IT",
                },
                {
                    "description": "Weekly audit of POD1 administration, feedback to surgeons",
                    "due_date": dt.date(2026, 8, 31),
                    "owner": "Quality nurse",
                },
            ],
        )
        first_step = plan.steps.first()
        assert first_step is not None  # the plan was just created with its steps
        services.action_step_complete(step=first_step, on=dt.date(2026, 7, 10))


def _cath(agreement: Agreement, user: Any) -> None:
    years = {y: _year(agreement, y) for y in (2024, 2025, 2026)}
    first = next((y for y in years.values() if y is not None), None)
    if first is None:
        return
    readmission = IndicatorTemplate.objects.get(key="readmission_30d")
    terms = terms_for_year(programme_year=first)
    status = agreement.status
    if agreement.is_frozen:
        Agreement.objects.filter(pk=agreement.pk).update(status="draft")
        agreement.refresh_from_db()
    try:
        pci = services.definition_from_template(
            template=readmission, terms=terms, weight=D(50), key="pci_readmission_30d", user=user
        )
        pci.name = "30-day readmission after PCI"
        pci.baseline_value, pci.baseline_period = D("9.8"), "2024 base year"
        pci.is_key_quality_indicator, pci.tolerance_pct = True, D(10)
        services.definition_save(definition=pci, user=user)
        complications = services.definition_from_template(
            template=readmission,
            terms=terms,
            weight=D(50),
            key="pci_major_complications",
            user=user,
        )
        complications.name = "Major complications after PCI"
        complications.description = (
            "Death, emergency CABG, stroke or major bleeding within "
            "the PCI admission (NCDR CathPCI)."
        )
        complications.populations = {
            "initial_population": {"field": "age", "op": ">=", "value": 18},
            "numerator": {"field": "major_complication", "op": "is_true"},
        }
        complications.fields = {
            "age": "number",
            "discharge_date": "date",
            "major_complication": "boolean",
        }
        complications.numerator_definition = "Cases with a major complication."
        complications.denominator_definition = "Adult PCI cases."
        complications.threshold, complications.target, complications.stretch = (
            D("4.0"),
            D("3.0"),
            D("2.0"),
        )
        complications.minimum_denominator = None
        complications.baseline_value, complications.baseline_period = D("3.1"), "2024 base year"
        complications.is_key_quality_indicator, complications.tolerance_pct = True, D(10)
        services.definition_save(definition=complications, user=user)
    finally:
        Agreement.objects.filter(pk=agreement.pk).update(status=status)
        agreement.refresh_from_db()
    year = years.get(2025)
    if year is not None:
        annual = periods_for_year(programme_year=year)[0]
        in_force = {d.key: d for d in definitions_in_force(programme_year=year)}
        if "pci_readmission_30d" in in_force:
            _enter(
                in_force["pci_readmission_30d"], year, annual, (44, 455), "NCDR CathPCI 2025", user
            )  # 9.67% vs baseline 9.8
            _enter(
                in_force["pci_major_complications"],
                year,
                annual,
                (15, 455),
                "NCDR CathPCI 2025",
                user,
            )  # 3.30% vs 3.1 + 10% = 3.41


def seed(*, organization: Any, users: dict, password: str, stdout: Any) -> None:
    # The library is reference data loaded by a migration; ensure it (idempotently) because a
    # database flushed since (a transactional test run, a restore of tenant data) lacks it.
    from .library import templates_load

    templates_load(IndicatorTemplate)
    user = users.get("administrator")
    ortho = Agreement.objects.filter(organization=organization, name=ORTHO).first()
    if ortho is not None and not ortho.indicator_definitions.exists():
        _ortho(ortho, user, stdout)
    cath = Agreement.objects.filter(organization=organization, name=CATH).first()
    if cath is not None and not cath.indicator_definitions.exists():
        _cath(cath, user)
    if ortho is not None:
        _results_file(ortho, user)


def _results_file(agreement: Agreement, user: Any) -> None:
    """A quality dashboard's file of aggregate results, uploaded and awaiting its mapping and
    confirmation (the results-import pages have something to show)."""
    from django.core.files.base import ContentFile

    from .aggregate_import import result_import_receive
    from .models import ResultImport

    year = ProgrammeYear.objects.filter(agreement=agreement).order_by("start").first()
    definition = agreement.indicator_definitions.order_by("position", "pk").first()
    if year is None or definition is None or ResultImport.objects.exists():
        return
    text = (
        "Quality dashboard - aggregate results\n"
        "Measure,Year,Quarter,Met,Eligible,Notes\n"
        f"{definition.key},{year.start.year},Q1,12,130,dashboard extract\n"
    )
    result_import_receive(
        organization=agreement.organization,
        agreement=agreement,
        upload=ContentFile(text.encode(), name="quality_dashboard_q1.csv"),
        user=user,
    )
