"""Year-end turnaround benchmark (prints figures; not a test).

    .venv/bin/python bench/yearend_bench.py [--rows N] [--database-url postgres://...]

From the files a hospital sends at year end to three finished programme years: four usage files
(the base year and three programme years, N rows each, default 1,000,000), three price files and
a year of patient-level case files per programme year (N / 5 cases, key quality indicators),
then per year the stored savings calculation, the adjudication run and the report PDF. Prints
one total (target <= 60 s) and each step's share of it, with the load average: on a shared
machine compare shares and ratios within one run, not absolute seconds.

The database (``--database-url``, default ``comanage_yearend_bench``) is recreated and migrated
first (not counted); the files are generated first (not counted) by the generators of
``savings_bench.py`` and ``indicators_bench.py``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/comanage_yearend_bench"
# Three programme years that have all ended (a final calculation is refused before its year's
# end), after their base year.
_LAST = dt.date.today().year - 1
YEARS = (_LAST - 2, _LAST - 1, _LAST)
BASE = _LAST - 3


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _case_file(path: Path, *, rows: int, year: int) -> None:
    """The indicators bench's case file, moved to ``year``."""
    import indicators_bench

    indicators_bench._generate(path, rows)
    if year != 2025:
        # Later year first, so a date moved once is not moved again.
        text = path.read_text().replace("2026-", f"{year + 1}-").replace("2025-", f"{year}-")
        path.write_text(text)


def main() -> None:  # noqa: PLR0915 - a script that reads top to bottom
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("The benchmark needs PostgreSQL: --database-url postgres://...")
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")
    workdir = Path(tempfile.mkdtemp(prefix="yearend-bench-"))
    os.environ["MEDIA_ROOT"] = str(workdir / "media")

    import savings_bench as sb

    sb._recreate_database(args.database_url)
    import django

    django.setup()
    from django.core.management import call_command
    from django_scopes import scope

    from adjudication import services as adjudication
    from agreements import models as am
    from comanage.core.models import Organization
    from indicators import services as indicator_services
    from indicators.casefile import CaseFileRefused
    from indicators.models import IndicatorTemplate
    from indicators.selectors import periods_for_year
    from savings import services
    from savings.models import SavingsOpportunity

    print(f"load average at start: {_load()}")
    started = time.perf_counter()
    call_command("migrate", verbosity=0, skip_checks=True)
    print(f"migrate (not counted): {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    npis = sb._npis()
    usage = {}
    for year, efficiency in zip((BASE, *YEARS), (1.0, 0.92, 0.88, 0.85), strict=True):
        usage[year] = workdir / f"usage_{year}.csv"
        sb._usage_file(
            usage[year], rows=args.rows, year=year, npis=npis, seed=year, efficiency=efficiency
        )
    prices = workdir / "prices.csv"
    sb._price_file(prices)
    cases = {}
    for year in YEARS:
        cases[year] = workdir / f"cases_{year}.csv"
        _case_file(cases[year], rows=max(args.rows // sb.ROWS_PER_CASE, 100), year=year)
    print(
        f"generated 4 x {args.rows:,} usage rows, 3 price files, 3 case files in "
        f"{time.perf_counter() - started:.1f} s (not counted)"
    )

    org = Organization.objects.create(name="Year-end Hospital", slug="yearend")
    steps: dict[str, float] = defaultdict(float)
    # This process's CPU seconds per step (PostgreSQL's own work is not in them): on a shared
    # machine the wall clock waits for the CPU; the CPU seconds say what the step costs.
    cpu: dict[str, float] = defaultdict(float)

    def timed(step: str, call, *a, **kw):  # type: ignore[no-untyped-def]
        begun, begun_cpu = time.perf_counter(), time.process_time()
        try:
            return call(*a, **kw)
        finally:
            steps[step] += time.perf_counter() - begun
            cpu[step] += time.process_time() - begun_cpu

    with scope(organization=org):
        practice = am.Practice.objects.create(organization=org, name="Year-end Cardiology")
        agreement = am.Agreement.objects.create(
            organization=org,
            kind=am.AgreementKind.SHARED_SAVINGS,
            name="Year-end programme",
            practice=practice,
            service_line=am.ServiceLine.CARDIOVASCULAR,
            term_start=dt.date(YEARS[0], 1, 1),
            term_end=dt.date(YEARS[-1], 12, 31),
        )
        terms = am.AgreementTerms.objects.create(
            organization=org,
            agreement=agreement,
            version=1,
            effective_from=dt.date(YEARS[0], 1, 1),
            admin_fee_monthly=Decimal("3000"),
            distribution_cap=Decimal("5000000"),
        )
        years = [
            am.ProgrammeYear.objects.create(
                organization=org,
                agreement=agreement,
                number=n,
                start=dt.date(y, 1, 1),
                end=dt.date(y, 12, 31),
            )
            for n, y in enumerate(YEARS, start=1)
        ]
        for i, npi in enumerate(npis):
            physician = am.Physician.objects.create(
                organization=org, npi=npi, first_name="Pat", last_name=f"Year{i:02d}"
            )
            am.Participation.objects.create(
                organization=org,
                agreement=agreement,
                physician=physician,
                join_date=dt.date(BASE, 1, 1),
            )
        per_opp = sb.ITEMS // sb.OPPORTUNITIES
        SavingsOpportunity.objects.bulk_create(
            [
                SavingsOpportunity(
                    organization=org,
                    agreement=agreement,
                    key=f"O{o:02d}",
                    name=f"Opportunity {o}",
                    case_types=[f"CT{o % sb.CASE_TYPES}"],
                    item_codes=[f"I{i}" for i in range(o * per_opp, (o + 1) * per_opp)],
                    savings_target=Decimal("100000"),
                    base_year=BASE,
                )
                for o in range(sb.OPPORTUNITIES)
            ]
        )
        # Two key quality indicators from the library: the quality gate reads their results.
        for template in IndicatorTemplate.objects.order_by("key")[:2]:
            definition = indicator_services.definition_from_template(
                template=template, terms=terms, weight=Decimal(50)
            )
            type(definition).objects.filter(pk=definition.pk).update(is_key_quality_indicator=True)

        timed(
            "import usage (4 files)",
            services.data_import_from_path,
            agreement=agreement,
            kind="usage",
            period="base",
            path=usage[BASE],
            user=None,
            base_year=BASE,
        )
        for programme_year, year in zip(years, YEARS, strict=True):
            timed(
                "import prices (3 files)",
                services.data_import_from_path,
                agreement=agreement,
                kind="prices",
                period="programme",
                path=prices,
                user=None,
                programme_year=programme_year,
            )
            timed(
                "import usage (4 files)",
                services.data_import_from_path,
                agreement=agreement,
                kind="usage",
                period="programme",
                path=usage[year],
                user=None,
                programme_year=programme_year,
            )
            annual = periods_for_year(programme_year=programme_year)[0]
            case_import = timed(
                "import case files (3)",
                indicator_services.case_import_create,
                agreement=agreement,
                programme_year=programme_year,
                period=annual,
                data=cases[year].read_bytes(),
                filename=f"cases_{year}.csv",
                user=None,
            )
            try:
                timed(
                    "import case files (3)",
                    indicator_services.case_import_apply,
                    case_import=case_import,
                )
            except CaseFileRefused as refused:
                print(
                    f"case file {year} refused (the year runs without its key indicators): "
                    f"{refused.problems.total} problems, e.g. {refused.problems.items[:2]}"
                )
        print(f"imports done; load {_load()}")

        for programme_year in years:
            calculation = timed(
                "savings calculations (3)",
                services.savings_calculation_run,
                programme_year=programme_year,
                user=None,
            )
            outcome = timed(
                "adjudication runs (3)",
                adjudication.adjudication_run,
                programme_year=programme_year,
                user=None,
            )
            report = outcome.report
            if report is not None:
                report = timed("report PDFs (3)", adjudication.report_render, report=report)
            print(
                f"{programme_year.label}: gross {calculation.gross_savings}, paid "
                f"{calculation.amount_paid}; run v{outcome.run.version}; PDF "
                f"{len(report.pdf) / 1024 if report and report.pdf else 0:.0f} KiB; "
                f"load {_load()}"
            )

    total = sum(steps.values())
    print(
        f"TOTAL year-end turnaround: {total:.1f} s (target <= 60 s) at {args.rows:,} rows "
        f"per usage file; load {_load()}"
    )
    print(f"  {'step':<28} {'wall':>9}  {'share':>7}  {'CPU (this process)':>18}")
    for step, seconds in steps.items():
        print(f"  {step:<28} {seconds:7.1f} s  {100 * seconds / total:5.1f} %  {cpu[step]:16.1f} s")
    print(f"  {'CPU of this process, all steps':<48} {sum(cpu.values()):8.1f} s")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
