"""Several organizations' imports and calculations at once, through real Celery workers
(prints figures; not a test).

    .venv/bin/python bench/multiorg_bench.py [--orgs 3] [--rows 100000] \
        [--database-url postgres://...] [--redis-url redis://127.0.0.1:6379/0]

For 1 and then 2 worker processes (``celery -A comanage worker --concurrency 1`` each, real
subprocesses on PostgreSQL and Redis): ``--orgs`` new organizations each upload a base-year and
a programme-year usage file (``--rows`` rows each) and a price file, all queued at once through
``data_import_start``; once they are applied, each organization's programme year is queued
through ``savings_calculation_start`` and its task delivered a second time (as a redelivery
would). Prints the wall time and throughput of each phase, and checks by counts that nothing was
duplicated or lost: every job succeeded, every import applied with all its rows, one stored
calculation per year. The load average is printed with the figures: compare the two worker
counts within one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/comanage_multiorg_bench"


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _ensure_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


def _workers_start(count: int, env: dict[str, str], logdir: Path) -> list[subprocess.Popen]:
    from comanage.celery import app

    processes = []
    for n in range(count):
        log = open(logdir / f"worker-{n}.log", "wb")  # noqa: SIM115 - closed with the process
        processes.append(
            subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "comanage",
                    "worker",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    "1",
                    "--without-gossip",
                    "--without-mingle",
                    "-n",
                    f"bench{n}-{os.getpid()}@%h",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=2.0) or []
        names = {name for reply in replies for name in reply}
        if sum(f"-{os.getpid()}@" in name for name in names) >= count:
            return processes
        if any(p.poll() is not None for p in processes):
            sys.exit(f"a worker exited; see {logdir}")
        time.sleep(1)
    sys.exit("the workers did not answer within 10 minutes")


def _workers_stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait(job_ids: list[int]) -> None:
    from django_scopes import scopes_disabled

    from comanage.core.models import Job, JobStatus

    with scopes_disabled():
        while Job.objects.filter(
            pk__in=job_ids, status__in=[JobStatus.QUEUED, JobStatus.RUNNING]
        ).exists():
            time.sleep(0.5)


def _organization(label: str, npis: list[str]):  # type: ignore[no-untyped-def]
    import savings_bench as sb
    from django_scopes import scope

    from agreements import models as am
    from comanage.core.models import Organization
    from savings.models import SavingsOpportunity

    org = Organization.objects.create(name=f"Bench {label}", slug=label)
    with scope(organization=org):
        practice = am.Practice.objects.create(organization=org, name="Cardiology")
        agreement = am.Agreement.objects.create(
            organization=org,
            kind=am.AgreementKind.SHARED_SAVINGS,
            name="Programme",
            practice=practice,
            service_line=am.ServiceLine.CARDIOVASCULAR,
            term_start=dt.date(2025, 1, 1),
            term_end=dt.date(2025, 12, 31),
        )
        am.AgreementTerms.objects.create(
            organization=org,
            agreement=agreement,
            version=1,
            effective_from=dt.date(2025, 1, 1),
            admin_fee_monthly=Decimal("3000"),
            distribution_cap=Decimal("5000000"),
        )
        am.ProgrammeYear.objects.create(
            organization=org,
            agreement=agreement,
            number=1,
            start=dt.date(2025, 1, 1),
            end=dt.date(2025, 12, 31),
        )
        for i, npi in enumerate(npis):
            physician = am.Physician.objects.create(
                organization=org, npi=npi, first_name="Pat", last_name=f"B{i:02d}"
            )
            am.Participation.objects.create(
                organization=org,
                agreement=agreement,
                physician=physician,
                join_date=dt.date(2024, 1, 1),
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
                    base_year=2024,
                )
                for o in range(sb.OPPORTUNITIES)
            ]
        )
    return org, agreement


def _round(
    workers: int,
    args,
    files: dict[str, Path],
    env: dict[str, str],  # type: ignore[no-untyped-def]
    logdir: Path,
    npis: list[str],
) -> bool:
    from django.core.files import File
    from django.db import transaction
    from django_scopes import scope, scopes_disabled

    from agreements.models import ProgrammeYear
    from comanage.core.jobs import DuplicateJob
    from comanage.core.models import Job, JobStatus
    from savings import services
    from savings.models import (
        CalculationKind,
        DataImport,
        ImportStatus,
        PriceItem,
        SavingsCalculation,
        UsageRow,
    )
    from savings.tasks import savings_calculation_task

    stamp = f"{int(time.time())}-{workers}w"
    worlds = [_organization(f"multi-{stamp}-{n}", npis) for n in range(args.orgs)]
    processes = _workers_start(workers, env, logdir)
    try:
        print(f"{workers} worker process(es) up; load {_load()}")
        import_jobs: list[int] = []
        started = time.perf_counter()
        for org, agreement in worlds:
            with scope(organization=org):
                year = ProgrammeYear.objects.get(agreement=agreement, number=1)
                for kind, period, path, options in (
                    ("usage", "base", files["base"], {"base_year": 2024}),
                    ("usage", "programme", files["year"], {"programme_year": year}),
                    ("prices", "programme", files["prices"], {"programme_year": year}),
                ):
                    with transaction.atomic(), open(path, "rb") as handle:
                        data_import = services.data_import_receive(
                            agreement=agreement,
                            kind=kind,
                            period=period,
                            upload=File(handle, name=path.name),
                            user=None,
                            **options,
                        )
                        import_jobs.append(
                            services.data_import_start(data_import=data_import, user=None).pk
                        )
        _wait(import_jobs)
        imports_time = time.perf_counter() - started
        rows = 2 * args.rows * args.orgs
        print(
            f"  imports: {len(import_jobs)} files, {rows:,} usage rows in {imports_time:.1f} s "
            f"= {rows / imports_time:,.0f} rows/s; load {_load()}"
        )

        calc_jobs: list[int] = []
        started = time.perf_counter()
        for org, agreement in worlds:
            with scope(organization=org):
                year = ProgrammeYear.objects.get(agreement=agreement, number=1)
                job = services.savings_calculation_start(programme_year=year, user=None)
                try:
                    again = services.savings_calculation_start(programme_year=year, user=None)
                except DuplicateJob as duplicate:
                    again = duplicate.existing
                assert again.pk == job.pk, "a second start made a second job"
                calc_jobs.append(job.pk)
                # A redelivery of the same task: it must store nothing twice.
                savings_calculation_task.delay(organization_id=org.pk, job_id=job.pk)
        _wait(calc_jobs)
        time.sleep(2)  # the redelivered tasks finish after the job is marked done
        calc_time = time.perf_counter() - started
        print(
            f"  calculations: {len(calc_jobs)} years in {calc_time:.1f} s = "
            f"{len(calc_jobs) / calc_time:.2f} years/s; load {_load()}"
        )
    finally:
        _workers_stop(processes)

    sound = True
    with scopes_disabled():
        for org, agreement in worlds:
            jobs = Job.objects.filter(organization=org)
            failed = list(jobs.exclude(status=JobStatus.SUCCEEDED).values_list("pk", "message"))
            imports = DataImport.objects.filter(agreement=agreement)
            applied = imports.filter(status=ImportStatus.APPLIED, is_current=True).count()
            usage = {
                i.pk: (i.row_count, UsageRow.objects.filter(data_import=i).count())
                for i in imports.filter(kind="usage")
            }
            prices = PriceItem.objects.filter(data_import__agreement=agreement).count()
            calculations = SavingsCalculation.objects.filter(
                agreement=agreement, kind=CalculationKind.YEAR
            ).count()
            problems = []
            if failed:
                problems.append(f"jobs not succeeded {failed}")
            if imports.count() != 3 or applied != 3:
                problems.append(f"{imports.count()} imports, {applied} applied (expected 3)")
            if any(stored != counted or counted != args.rows for stored, counted in usage.values()):
                problems.append(f"usage rows {usage} (expected {args.rows} each)")
            if prices != 5000:
                problems.append(f"{prices} price rows (expected 5000)")
            if calculations != 1:
                problems.append(f"{calculations} stored calculations (expected 1)")
            print(f"  {org.slug}: " + ("counts OK" if not problems else "; ".join(problems)))
            sound = sound and not problems
    return sound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orgs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("The benchmark needs PostgreSQL: --database-url postgres://...")
    workdir = Path(tempfile.mkdtemp(prefix="multiorg-bench-"))
    env = {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "DJANGO_SETTINGS_MODULE": "comanage.settings.local",
        "MEDIA_ROOT": str(workdir / "media"),
        "CELERY_TASK_ALWAYS_EAGER": "false",
    }
    os.environ.update(env)
    _ensure_database(args.database_url)

    import django

    django.setup()
    import savings_bench as sb
    from django.core.management import call_command

    from comanage.celery import app

    print(f"load average at start: {_load()}")
    call_command("migrate", verbosity=0, skip_checks=True)
    app.control.purge()
    npis = sb._npis()
    files = {
        "base": workdir / "usage_2024.csv",
        "year": workdir / "usage_2025.csv",
        "prices": workdir / "prices.csv",
    }
    sb._usage_file(files["base"], rows=args.rows, year=2024, npis=npis, seed=1, efficiency=1.0)
    sb._usage_file(files["year"], rows=args.rows, year=2025, npis=npis, seed=2, efficiency=0.9)
    sb._price_file(files["prices"])
    sound = True
    for workers in (1, 2):
        sound = _round(workers, args, files, env, workdir, npis) and sound
    print(f"load average at end: {_load()}")
    if sound:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"worker logs kept in {workdir}")
    sys.exit(0 if sound else 1)


if __name__ == "__main__":
    main()
