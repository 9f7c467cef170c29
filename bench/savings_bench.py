"""Savings benchmark (prints figures; not a test).

    .venv/bin/python bench/savings_bench.py [--rows N]

Against PostgreSQL (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/
comanage_savings_bench``, recreated and migrated first): 3 years x N usage rows (default
1,000,000), 50 opportunities, 5,000 items, 40 physicians. Prints the import time per file and
its ratio to a bare ``COPY`` of the same file into an unindexed table (target <= 1.5x), the engine
time for one programme year (target < 2 s), the whole ``savings_for_year`` time cold (the first
call writes the imports' columnar and prepared files, ``savings.columnar``), on a process's
first call (reads the prepared files) and warm (target <= 1 s), with CPU seconds, the p95
of what-if scenarios run through ``savings_calculation_run`` (terms/prices; quantities), the p95
of what-if scenarios through the web page and through the API over real HTTP (gunicorn on the
same PostgreSQL database and media directory, an administrator signed in through the login
form, an API token; target <= 1.5 s), and the peak memory of the process (target < 2 GiB).
Every figure is printed with the load average: compare ratios within one run on a shared
machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/comanage_savings_bench"
ITEMS, OPPORTUNITIES, PHYSICIANS, CASE_TYPES, ROWS_PER_CASE = 5000, 50, 40, 10, 5


def _recreate_database(url: str) -> None:
    import psycopg2
    from psycopg2 import sql

    name = url.rsplit("/", 1)[1]
    admin = psycopg2.connect(url.rsplit("/", 1)[0] + "/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    admin.close()


def _npis() -> list[str]:
    from agreements.validators import npi_is_valid

    out = []
    n = 0
    while len(out) < PHYSICIANS:
        base = f"1{7000000 + n:08d}"[-9:]
        n += 1
        for check in range(10):
            if npi_is_valid(base + str(check)):
                out.append(base + str(check))
                break
    return out


def _usage_file(
    path: Path, *, rows: int, year: int, npis: list[str], seed: int, efficiency: float
) -> None:
    """Cases of ROWS_PER_CASE rows; items drawn from the case type's opportunities."""
    rng = np.random.default_rng(seed)
    cases = rows // ROWS_PER_CASE
    case_index = np.repeat(np.arange(cases), ROWS_PER_CASE)[:rows]
    case_type = rng.integers(0, CASE_TYPES, cases)
    npi = rng.integers(0, len(npis), cases)
    day = rng.integers(0, 365, cases)
    federal = rng.random(cases) < 0.55
    severity = rng.integers(150, 250, cases)
    # Opportunity o covers case type o % CASE_TYPES and items o*100 .. o*100+99.
    opp = case_type[case_index] + CASE_TYPES * rng.integers(0, OPPORTUNITIES // CASE_TYPES, rows)
    item = opp * (ITEMS // OPPORTUNITIES) + rng.integers(0, ITEMS // OPPORTUNITIES, rows)
    # Unique (case, item): make the item depend on the row's position in its case.
    item = (item // ROWS_PER_CASE) * ROWS_PER_CASE + (np.arange(rows) % ROWS_PER_CASE)
    # 1 to 5 units a row, 3 on average in the base year (efficiency 1.0): a year of efficiency
    # e uses 1 + 2e on average, so the programme years' savings are real, not noise (rounding
    # 1-3 units by e = 0.85 left every quantity as it was).
    quantity = 1 + rng.binomial(4, 0.5 * efficiency, rows).astype(np.int64)
    cost_cents = 1000 + item * 7 % 90000
    start = dt.date(year, 1, 1).toordinal()
    dates = np.array([dt.date.fromordinal(start + d).isoformat() for d in range(365)])
    table = pa.table(
        {
            "case_id": pa.array(np.char.add(f"y{year}-", case_index.astype(str))),
            "service_date": pa.array(dates[day[case_index]]),
            "case_type": pa.array(np.char.add("CT", case_type[case_index].astype(str))),
            "physician_npi": pa.array(np.array(npis)[npi[case_index]]),
            "payer": pa.array(np.where(federal[case_index], "medicare", "commercial")),
            "federal_program": pa.array(np.where(federal[case_index], "true", "false")),
            "item_code": pa.array(np.char.add("I", item.astype(str))),
            "quantity": pa.array(quantity.astype(str)),
            "unit_cost": pa.array(
                np.char.add(
                    np.char.add((cost_cents // 100).astype(str), "."),
                    np.char.zfill((cost_cents % 100).astype(str), 2),
                )
            ),
            "severity_weight": pa.array(
                np.char.add("1.", np.char.zfill((severity[case_index] - 100).astype(str), 2))
            ),
            "notice_date": pa.array(dates[np.maximum(day[case_index] - 3, 0)]),
            "reviewed": pa.array(np.full(rows, "true")),
            # Per case: all rows of one case agree on its fields (spec 4 edge case).
            "opted_out": pa.array(
                np.where((rng.random(cases) < 0.002)[case_index], "true", "false")
            ),
        }
    )
    pacsv.write_csv(table, path, write_options=pacsv.WriteOptions(quoting_style="none"))


def _price_file(path: Path) -> None:
    with open(path, "w") as handle:
        handle.write("item_code,unit_cost\n")
        for item in range(ITEMS):
            cents = 1000 + item * 7 % 90000
            handle.write(f"I{item},{cents // 100}.{cents % 100:02d}\n")


US_HEADER = {
    "case_id": "Case #",
    "service_date": "DOS",
    "case_type": "Procedure Code",
    "physician_npi": "Surgeon NPI",
    "payer": "Payor",
    "federal_program": "Govt Payer",
    "item_code": "Item #",
    "quantity": "Qty",
    "unit_cost": "Cost Each",
    "severity_weight": "DRG Weight",
    "notice_date": "Date Notified",
    "reviewed": "Patient Reviewed",
    "opted_out": "Opt Out",
}


def _us_dates(iso: pa.Array, *, two_digit_year: bool) -> pa.Array:
    """2025-01-05 as 1/5/2025 (or 1/5/25): months and days without leading zeros."""
    import pyarrow.compute as pc

    parts = pc.split_pattern(iso, "-")
    year = pc.list_element(parts, 0)
    if two_digit_year:
        year = pc.utf8_slice_codeunits(year, 2)
    month = pc.utf8_ltrim(pc.list_element(parts, 1), characters="0")
    day = pc.utf8_ltrim(pc.list_element(parts, 2), characters="0")
    return pc.binary_join_element_wise(month, day, year, "/")


def _us_dollars(cents: np.ndarray) -> np.ndarray:
    """Whole cents as $1,234.56 (negative ones as ($12.50), a credit)."""
    whole = np.abs(cents) // 100
    text = np.char.add(
        np.char.add("$", np.array([f"{w:,}" for w in range(int(whole.max()) + 1)])[whole]),
        np.char.add(".", np.char.zfill((np.abs(cents) % 100).astype(str), 2)),
    )
    return np.where(cents < 0, np.char.add(np.char.add("(", text), ")"), text)


def _us_usage_file(canonical: Path, path: Path) -> None:
    """The same rows as a hospital system exports them: a title row above the header, its own
    column names, US dates (12/31/2025 and 1/5/25), dollar amounts with thousands separators,
    Y/N flags, and an extended cost column the import does not read (credits in brackets)."""
    import pyarrow.compute as pc

    table = pacsv.read_csv(
        canonical,
        convert_options=pacsv.ConvertOptions(
            column_types={c: pa.string() for c in US_HEADER}, strings_can_be_null=False
        ),
    )

    def yes_no(name: str) -> pa.Array:
        values = table.column(name)
        return pc.if_else(pc.equal(values, "true"), "Y", pc.if_else(pc.equal(values, ""), "", "N"))

    # Unit costs are written with two decimals (_usage_file): whole cents, per distinct cost.
    costs = pc.dictionary_encode(table.column("unit_cost")).combine_chunks()
    cents = np.array([int(c.replace(".", "")) for c in costs.dictionary.to_pylist()])
    position = costs.indices.to_numpy()
    extended = cents[position] * pc.cast(table.column("quantity"), pa.int64()).to_numpy()
    extended[::97] *= -1  # a credit now and then
    columns = {
        "Case #": table.column("case_id"),
        "DOS": _us_dates(table.column("service_date"), two_digit_year=False),
        "Procedure Code": table.column("case_type"),
        "Surgeon NPI": table.column("physician_npi"),
        "Payor": table.column("payer"),
        "Govt Payer": yes_no("federal_program"),
        "Item #": table.column("item_code"),
        "Qty": table.column("quantity"),
        "Cost Each": pa.array(_us_dollars(cents)).take(costs.indices),
        "Ext Cost": pa.array(_us_dollars(extended)),
        "DRG Weight": table.column("severity_weight"),
        "Date Notified": _us_dates(table.column("notice_date"), two_digit_year=True),
        "Patient Reviewed": yes_no("reviewed"),
        "Opt Out": yes_no("opted_out"),
    }
    with open(path, "wb") as handle:
        handle.write(b"Supply usage by case - Bench Hospital - exported 01/15/2026\n")
        pacsv.write_csv(
            pa.table(columns),
            handle,
            write_options=pacsv.WriteOptions(quoting_style="needed"),
        )


def _import_us(services, agreement, path: Path, period: str, programme_year, base_year):  # type: ignore[no-untyped-def]
    """Upload, map (the columns as a person would match them, month/day/year dates), apply."""
    from django.core.files import File

    with open(path, "rb") as handle:
        data_import = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period=period,
            upload=File(handle, name=path.name),
            user=None,
            programme_year=programme_year,
            base_year=base_year,
        )
    services.data_import_map(
        data_import=data_import,
        user=None,
        columns={label: field for field, label in US_HEADER.items()},
        date_format="mdy",
    )
    if not data_import.mapping_used:
        raise RuntimeError("the US-format file was read as canonical: no mapping recorded")
    return services.data_import_apply(data_import=data_import)


def _server_cpu() -> float:
    """CPU seconds the database backend of this connection has used (PostgreSQL on this
    machine: /proc), or NaN when it cannot be read."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bare_copy(path: Path) -> float:
    """COPY of the file into a plain (logged, unindexed) table, commit included: the floor."""
    from django.db import connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_bare_copy")
        cursor.execute(
            "CREATE TABLE bench_bare_copy (case_id varchar(64), service_date date, "
            "case_type varchar(32), physician_npi varchar(10), payer varchar(64), "
            "federal_program boolean, item_code varchar(50), quantity numeric(16,4), "
            "unit_cost numeric(16,4), severity_weight numeric(10,4), notice_date date, "
            "reviewed boolean, opted_out boolean)"
        )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor, open(path, "rb") as handle:
        cursor.cursor.copy_expert(
            "COPY bench_bare_copy FROM STDIN WITH (FORMAT csv, HEADER true)", handle
        )
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_bare_copy")
    return elapsed


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _scenarios(services, programme_year, count: int, *, quantities: bool = False) -> None:  # type: ignore[no-untyped-def]
    """What-if scenarios through the service the web page and the API queue
    (``savings_calculation_run`` with ``kind=scenario``): each one stored, p95 printed."""
    from savings.models import CalculationKind

    elapsed = []
    for n in range(count):
        if quantities:
            overrides = {"quantity_pct": {f"I{100 * n + i}": 90 - n for i in range(20)}}
        else:
            overrides = {
                "terms": {"physician_share_pct": str(40 + n)},
                "prices": {f"I{7 * n}": f"{10 + n}.25"},
            }
        started = time.perf_counter()
        services.savings_calculation_run(
            programme_year=programme_year,
            user=None,
            kind=CalculationKind.SCENARIO,
            overrides=overrides,
        )
        elapsed.append(time.perf_counter() - started)
    p95 = float(np.percentile(elapsed, 95))
    kind = "quantity what-if" if quantities else "terms/prices what-if"
    print(
        f"{kind} x {count}: p95 {p95:.2f} s, median {float(np.median(elapsed)):.2f} s, "
        f"max {max(elapsed):.2f} s; load {_load()}"
    )


def _http_what_if(org, programme_year, count: int, *, url: str, media: str) -> None:  # type: ignore[no-untyped-def]
    """What-if scenarios over real HTTP: the adjudication what-if page (a signed-in
    administrator's form POST) and ``POST .../adjudication/runs/scenario/`` (an API token),
    served by gunicorn (2 sync workers) on this database and media directory."""
    import http.cookiejar
    import json
    import re
    import signal
    import socket
    import subprocess
    import urllib.parse
    import urllib.request

    from comanage.core.models import ApiToken, Membership, Role, User

    email, password = "bench-admin@bench.example", "bench-what-if-2026"
    user = User.objects.create(email=email, first_name="Bench", last_name="Admin")
    user.set_password(password)
    user.save()
    Membership.objects.create(organization=org, user=user, role=Role.ADMINISTRATOR)
    _token, raw = ApiToken.issue(user=user, name="bench", two_factor_verified=True)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    var = tempfile.mkdtemp(prefix="savings-bench-var-")
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "comanage.settings.local",
            "DATABASE_URL": url,
            "MEDIA_ROOT": media,
            "COMANAGE_VAR_DIR": var,
            "DEBUG": "false",
            "REQUIRE_2FA": "false",
        }
    )
    log = open(Path(var) / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "comanage.wsgi",
            "--workers",
            "2",
            "--timeout",
            "300",
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/account/login/", timeout=5).read()  # noqa: S310
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

        def csrf(page: str) -> str:
            return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]

        login = base + "/account/login/"
        page = opener.open(login, timeout=30).read().decode()
        form = {"username": email, "password": password, "csrfmiddlewaretoken": csrf(page)}
        response = opener.open(
            urllib.request.Request(
                login, data=urllib.parse.urlencode(form).encode(), headers={"Referer": login}
            ),
            timeout=30,
        )
        if "/account/login/" in response.url:
            raise RuntimeError("sign-in failed")
        what_if = f"{base}/o/{org.slug}/adjudication/years/{programme_year.pk}/what-if/"
        api = f"{base}/api/v1/organizations/{org.slug}/adjudication/runs/scenario/"

        def web(n: int) -> None:
            token = csrf(opener.open(what_if, timeout=300).read().decode())
            data = {
                "csrfmiddlewaretoken": token,
                "physician_share_pct": str(40 + n % 10),
                "quantity_pct": f"I{100 * n % 5000} = {90 - n % 50}",
            }
            started = time.perf_counter()
            answer = opener.open(
                urllib.request.Request(
                    what_if,
                    data=urllib.parse.urlencode(data).encode(),
                    headers={"Referer": what_if},
                ),
                timeout=300,
            )
            body = answer.read().decode()
            timings["web page"].append(time.perf_counter() - started)
            if answer.status != 200 or ">Scenario</th>" not in body:
                raise RuntimeError(f"what-if page answered {answer.status} without figures")

        def through_api(n: int) -> None:
            payload = {
                "programme_year": programme_year.pk,
                "overrides": {
                    "terms": {"physician_share_pct": str(40 + n % 10)},
                    "prices": {f"I{7 * n % 5000}": f"{10 + n}.25"},
                },
            }
            started = time.perf_counter()
            answer = urllib.request.urlopen(  # noqa: S310
                urllib.request.Request(
                    api,
                    data=json.dumps(payload).encode(),
                    headers={"Authorization": f"Bearer {raw}", "Content-Type": "application/json"},
                ),
                timeout=300,
            )
            body = json.loads(answer.read())
            timings["API"].append(time.perf_counter() - started)
            if answer.status != 200 or not body["results"]:
                raise RuntimeError(f"scenario API answered {answer.status} without figures")

        timings: dict[str, list[float]] = {"web page": [], "API": []}
        # One of each first per worker, not counted: a fresh worker imports the engine and
        # maps the columnar files once.
        for n in range(2):
            web(n)
            through_api(n)
        timings = {"web page": [], "API": []}
        for n in range(count):
            web(n + 2)
            through_api(n + 2)
        for name, values in timings.items():
            p95 = float(np.percentile(values, 95))
            verdict = "meets" if p95 <= 1.5 else "misses"
            print(
                f"what-if over HTTP, {name} x {count}: p95 {p95:.2f} s ({verdict} <= 1.5 s), "
                f"median {float(np.median(values)):.2f} s, max {max(values):.2f} s; "
                f"load {_load()}"
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(var, ignore_errors=True)


def _canonical_import(services, agreement, path, period, programme_year, base_year):  # type: ignore[no-untyped-def]
    return services.data_import_from_path(
        agreement=agreement,
        kind="usage",
        period=period,
        path=path,
        user=None,
        programme_year=programme_year,
        base_year=base_year,
    )


def _us_import(services, agreement, paths, period, programme_year, base_year):  # type: ignore[no-untyped-def]
    return _import_us(services, agreement, paths[1], period, programme_year, base_year)


def _import_round(services, agreement, files, targets, run) -> list[float]:  # type: ignore[no-untyped-def]
    """Per file: a bare COPY of the canonical file, then the import; the ratio of their wall
    clocks, and the CPU seconds of each (this process + its database backend)."""
    ratios = []
    for path, (period, programme_year, base_year) in zip(files, targets, strict=True):
        canonical = path if isinstance(path, Path) else path[0]
        server, client = _server_cpu(), time.process_time()
        bare = _bare_copy(canonical)
        bare_cpu = (_server_cpu() - server, time.process_time() - client)
        server, client = _server_cpu(), time.process_time()
        started = time.perf_counter()
        data_import = run(services, agreement, path, period, programme_year, base_year)
        elapsed = time.perf_counter() - started
        cpu = (_server_cpu() - server, time.process_time() - client)
        if data_import.row_count != _data_rows(canonical):
            raise RuntimeError(f"{data_import.row_count} rows imported from {path}")
        ratios.append(elapsed / bare)
        name = canonical.name if isinstance(path, Path) else path[1].name
        print(
            f"import {name}: {elapsed:.2f} s (CPU: this process {cpu[1]:.2f} s, database "
            f"{cpu[0]:.2f} s); bare COPY {bare:.2f} s (CPU: database {bare_cpu[0]:.2f} s); "
            f"ratio {elapsed / bare:.2f}x (target <= 1.5x); load {_load()}"
        )
    return ratios


def _data_rows(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--scenarios", type=int, default=10)
    parser.add_argument(
        "--us-format",
        action="store_true",
        help="also import the same rows as a US-formatted export read through a mapping",
    )
    parser.add_argument(
        "--imports-only", action="store_true", help="stop after the imports (no calculation)"
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith("postgres"):
        sys.exit("The benchmark needs PostgreSQL (COPY): set DATABASE_URL=postgres://...")
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")
    # Uploaded files and the columnar copies go to a directory removed at the end.
    media = tempfile.mkdtemp(prefix="savings-bench-media-")
    os.environ.setdefault("MEDIA_ROOT", media)
    _recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command
    from django_scopes import scope

    from agreements import models as am
    from comanage.core.models import Organization
    from savings import engine, services
    from savings.models import SavingsOpportunity

    # The machine is shared: the load average says how far the figures can be trusted.
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    started = time.perf_counter()
    call_command("migrate", verbosity=0, skip_checks=True)
    print(f"migrate: {time.perf_counter() - started:.1f} s")

    org = Organization.objects.create(name="Bench Hospital", slug="bench")
    npis = _npis()
    with scope(organization=org):
        practice = am.Practice.objects.create(organization=org, name="Bench Cardiology")
        agreement = am.Agreement.objects.create(
            organization=org,
            kind=am.AgreementKind.SHARED_SAVINGS,
            name="Bench programme",
            practice=practice,
            service_line=am.ServiceLine.CARDIOVASCULAR,
            term_start=dt.date(2025, 1, 1),
            term_end=dt.date(2026, 12, 31),
        )
        am.AgreementTerms.objects.create(
            organization=org,
            agreement=agreement,
            version=1,
            effective_from=dt.date(2025, 1, 1),
            admin_fee_monthly=Decimal("3000"),
            distribution_cap=Decimal("5000000"),
        )
        years = [
            am.ProgrammeYear.objects.create(
                organization=org,
                agreement=agreement,
                number=n,
                start=dt.date(2024 + n, 1, 1),
                end=dt.date(2024 + n, 12, 31),
            )
            for n in (1, 2)
        ]
        for i, npi in enumerate(npis):
            physician = am.Physician.objects.create(
                organization=org, npi=npi, first_name="Pat", last_name=f"Bench{i:02d}"
            )
            am.Participation.objects.create(
                organization=org,
                agreement=agreement,
                physician=physician,
                join_date=dt.date(2024, 1, 1),
            )
        per_opp = ITEMS // OPPORTUNITIES
        SavingsOpportunity.objects.bulk_create(
            [
                SavingsOpportunity(
                    organization=org,
                    agreement=agreement,
                    key=f"O{o:02d}",
                    name=f"Opportunity {o}",
                    case_types=[f"CT{o % CASE_TYPES}"],
                    item_codes=[f"I{i}" for i in range(o * per_opp, (o + 1) * per_opp)],
                    savings_target=Decimal("100000"),
                    base_year=2024,
                )
                for o in range(OPPORTUNITIES)
            ]
        )

        with tempfile.TemporaryDirectory() as tmp:
            files = []
            started = time.perf_counter()
            for year, efficiency in ((2024, 1.0), (2025, 0.9), (2026, 0.85)):
                path = Path(tmp) / f"usage_{year}.csv"
                _usage_file(
                    path, rows=args.rows, year=year, npis=npis, seed=year, efficiency=efficiency
                )
                files.append(path)
            prices = Path(tmp) / "prices.csv"
            _price_file(prices)
            print(
                f"generated 3 x {args.rows:,} rows in {time.perf_counter() - started:.1f} s "
                f"({files[0].stat().st_size / 2**20:.0f} MiB per file)"
            )

            for programme_year in years:
                services.data_import_from_path(
                    agreement=agreement,
                    kind="prices",
                    period="programme",
                    path=prices,
                    user=None,
                    programme_year=programme_year,
                )
            targets = [
                ("base", None, 2024),
                ("programme", years[0], None),
                ("programme", years[1], None),
            ]
            ratios = _import_round(services, agreement, files, targets, _canonical_import)
            print(
                f"import / bare COPY, median of the {len(ratios)} files: "
                f"{float(np.median(ratios)):.2f}x (target <= 1.5x); load {_load()}"
            )
            if args.us_format:
                us_files = []
                for path in files:
                    us_files.append(path.with_name(f"us_{path.name}"))
                    _us_usage_file(path, us_files[-1])
                print(
                    f"US-format files: {us_files[0].stat().st_size / 2**20:.0f} MiB each; "
                    "the ratio is the mapped import of the US file against a bare COPY of the "
                    "canonical file with the same rows, measured just before it"
                )
                ratios = _import_round(
                    services,
                    agreement,
                    list(zip(files, us_files, strict=True)),
                    targets,
                    _us_import,
                )
                print(
                    f"US-format import through a mapping / bare COPY of the canonical file, "
                    f"median of the {len(ratios)} files: {float(np.median(ratios)):.2f}x "
                    f"(target <= 1.5x); load {_load()}"
                )
        if args.imports_only:
            shutil.rmtree(media, ignore_errors=True)
            print(f"load average (1, 5, 15 min) at end: {_load()}")
            return

        timings: list[float] = []
        original = engine.savings_compute

        def timed(**kwargs):  # type: ignore[no-untyped-def]
            begun = time.perf_counter()
            try:
                return original(**kwargs)
            finally:
                timings.append(time.perf_counter() - begun)

        services.engine.savings_compute = timed  # type: ignore[assignment]
        from savings import columnar

        def year_call(programme_year, label: str) -> tuple[float, float]:  # type: ignore[no-untyped-def]
            started, started_cpu = time.perf_counter(), time.process_time()
            computation = services.savings_for_year(
                programme_year=programme_year, already_distributed=Decimal("0")
            )
            total = time.perf_counter() - started
            total_cpu = time.process_time() - started_cpu
            print(
                f"{programme_year.label} {label}: engine {timings[-1]:.2f} s "
                f"(target < 2 s); savings_for_year incl. loading {total:.2f} s "
                f"(target <= 1.0 s warm; CPU {total_cpu:.2f} s); "
                f"gross {computation.result.gross_savings}, "
                f"paid {computation.result.amount_paid}; load {_load()}"
            )
            return total, total_cpu

        for programme_year in years:
            year_call(programme_year, "cold (builds the columnar and prepared files)")
            # A fresh process (another web or Celery worker): the prepared files are read and
            # their SHA-256 checked once, then kept in memory.
            columnar.memory_clear()
            year_call(programme_year, "first call of a process (reads the prepared files)")
            warm = [year_call(programme_year, "warm") for _ in range(3)]
            print(
                f"{programme_year.label} warm x {len(warm)}: median "
                f"{float(np.median([w for w, _ in warm])):.2f} s wall, "
                f"{float(np.median([c for _, c in warm])):.2f} s CPU (target <= 1.0 s); "
                f"load {_load()}"
            )
        files = sorted(columnar.directory(org.pk).glob("*.arrow"))
        prepared = [f for f in files if f.name.endswith("-prepared.arrow")]
        for name, group in (
            ("rows", [f for f in files if f not in prepared]),
            ("prepared", prepared),
        ):
            size = sum(f.stat().st_size for f in group) / 2**20
            print(f"columnar {name} files: {len(group)}, {size:.0f} MiB")
        _scenarios(services, years[1], args.scenarios)
        _scenarios(services, years[1], 3, quantities=True)
        _http_what_if(org, years[1], args.scenarios, url=url, media=media)
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    shutil.rmtree(media, ignore_errors=True)
    print(f"peak memory (maxrss): {peak:.2f} GiB (target < 2 GiB)")


if __name__ == "__main__":
    main()
