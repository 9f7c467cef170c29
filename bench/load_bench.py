"""Load benchmark of the read-heavy pages (not a test; prints figures).

    .venv/bin/python bench/load_bench.py [--users 20] [--seconds 30] [--agreements 20]
                                         [--database-url URL] [--workers 2]
                                         [--think-time SECONDS] [--warmup SECONDS]

Builds a database (SQLite in a temporary directory unless ``--database-url`` names one):
migrate, ``seed_demo``, then ``scale_demo`` to N agreements of 3 programme years each. Serves
it with gunicorn (2 workers, production-like: DEBUG off, static files from whitenoise) on a free
local port, signs ``--users`` executives in through the real login form, and drives the
executive dashboard, the executive agreement page and the agreements app's agreement page
from that many concurrent threads for a bounded time. Prints p50 / p95 / max latency and
requests per second per page and overall, with the load average (the machine may be shared).
Targets: with ``--think-time 1`` and 50 users, p95 <= 100 ms; the closed-loop run (think time
0) is printed as throughput in requests per second.

A PostgreSQL ``--database-url`` names a database that is dropped and recreated first.

The measured window follows ``--warmup`` seconds (default 10) of the same load, not counted:
the pages' cached fragments live in each worker's memory, and a steady state has every
agreement's pages rendered once per worker, as a day's first users would leave them.

The main figure is closed-loop with zero think time (each user asks again as soon as answered:
latency is then mostly queueing). ``--think-time S`` first runs that, then the same load with
each user pausing S seconds between requests (a more realistic arrival rate), and prints both.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
PASSWORD = "comanage-demo-2026"  # noqa: S105 - the documented demo credential
EMAIL = "executive@riverside.example"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def _opener() -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar()
    return urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))


def _login(base: str) -> urllib.request.OpenerDirector:
    opener = _opener()
    page = opener.open(base + "/account/login/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode(
        {"username": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    request = urllib.request.Request(
        base + "/account/login/", data=data, headers={"Referer": base + "/account/login/"}
    )
    response = opener.open(request, timeout=30)
    if "/account/login/" in response.url:
        raise RuntimeError("sign-in failed")
    return opener


def _wait(base: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/account/login/", timeout=2).read()  # noqa: S310
            return
        except Exception:  # noqa: BLE001 - keep polling until it answers
            time.sleep(0.5)
    raise RuntimeError("gunicorn did not come up")


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


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


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--agreements", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10,
        help="seconds of the same load, not counted, before measuring",
    )
    parser.add_argument(
        "--think-time",
        type=float,
        default=1.0,
        help="also run with each user pausing this long between requests",
    )
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="comanage-load-"))
    for sub in ("broker/queue", "broker/control", "cache", "media", "static"):
        (workdir / "var" / sub).mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "comanage.settings.local",
            "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'load.sqlite3'}",
            "COMANAGE_VAR_DIR": str(workdir / "var"),
            "DEBUG": "false",
            "REQUIRE_2FA": "false",
            "CELERY_TASK_ALWAYS_EAGER": "true",
        }
    )
    started = time.time()
    print(f"load average at start: {_load()}", flush=True)
    if env["DATABASE_URL"].startswith("postgres"):
        _recreate_database(env["DATABASE_URL"])
    print(f"building the database in {workdir} …", flush=True)
    _manage(env, "migrate", "--noinput", "-v0")
    _manage(env, "seed_demo")
    print(_manage(env, "scale_demo", "--agreements", str(args.agreements)).strip(), flush=True)
    ids = _manage(
        env,
        "shell",
        "-c",
        (
            "from django_scopes import scopes_disabled\n"
            "from agreements.models import Agreement, ProgrammeYear\n"
            "with scopes_disabled():\n"
            "    qs = Agreement.objects.filter(organization__slug='riverside')\n"
            "    print('COUNTS', qs.count(),\n"
            "          ProgrammeYear.objects.filter(agreement__in=qs).count())\n"
            "    print('PKS', *qs.values_list('pk', flat=True))"
        ),
    ).split("\n")
    counts = next(line for line in ids if line.startswith("COUNTS ")).split()[1:]
    pks = [int(x) for x in next(line for line in ids if line.startswith("PKS ")).split()[1:]]
    print(
        f"data: {counts[0]} agreements, {counts[1]} programme years "
        f"({time.time() - started:.0f} s to build)",
        flush=True,
    )

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "comanage.wsgi",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "-",
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
        _wait(base)
        sessions = [_login(base) for _ in range(args.users)]
        pages = {
            "executive dashboard": lambda: "/o/riverside/dashboard/",
            "executive agreement page": lambda: (
                f"/o/riverside/dashboard/agreements/{random.choice(pks)}/"
            ),  # noqa: S311
            "agreement page (agreements app)": lambda: (
                f"/o/riverside/agreements/{random.choice(pks)}/"
            ),  # noqa: S311
        }

        def run(think_time: float, *, seconds: float, report: bool = True) -> None:
            results: dict[str, list[float]] = {name: [] for name in pages}
            errors: list[str] = []
            lock = threading.Lock()
            deadline = time.time() + seconds

            def user(opener: urllib.request.OpenerDirector) -> None:
                names = list(pages)
                i = random.randrange(len(names))  # noqa: S311
                while time.time() < deadline:
                    name = names[i % len(names)]
                    i += 1
                    t0 = time.perf_counter()
                    try:
                        response = opener.open(base + pages[name](), timeout=30)
                        response.read()
                        ok = response.status == 200 and "/account/login/" not in response.url
                    except Exception as exc:  # noqa: BLE001 - count it, keep going
                        ok = False
                        with lock:
                            errors.append(f"{name}: {exc!r}")
                    elapsed = (time.perf_counter() - t0) * 1000
                    with lock:
                        if ok:
                            results[name].append(elapsed)
                        elif len(errors) < 1000:
                            errors.append(f"{name}: bad response")
                    if think_time:
                        time.sleep(min(think_time, max(0.0, deadline - time.time())))

            t_start = time.time()
            threads = [threading.Thread(target=user, args=(s,)) for s in sessions]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.time() - t_start
            if not report:
                done = sum(len(v) for v in results.values())
                print(
                    f"\nwarm-up: {done} requests in {wall:.1f} s, not counted (every "
                    f"agreement's pages rendered once per worker, as by a day's first users)"
                    + (f"; errors: {len(errors)}" if errors else "")
                )
                return
            print(
                f"\n{args.users} concurrent users for {wall:.1f} s, gunicorn {args.workers} "
                f"workers, {env['DATABASE_URL'].split(':')[0]}, think time {think_time:g} s; "
                f"load average {_load()}"
            )
            print(
                f"{'page':34} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
                f"{'max ms':>8}"
            )
            everything: list[float] = []
            for name, values in results.items():
                everything += values
                if values:
                    print(
                        f"{name:34} {len(values):8d} {len(values) / wall:7.1f} "
                        f"{statistics.median(values):8.1f} {_pct(values, 0.95):8.1f} "
                        f"{max(values):8.1f}"
                    )
            if everything:
                print(
                    f"{'all':34} {len(everything):8d} {len(everything) / wall:7.1f} "
                    f"{statistics.median(everything):8.1f} {_pct(everything, 0.95):8.1f} "
                    f"{max(everything):8.1f}"
                )
                p95 = _pct(everything, 0.95)
                if think_time:
                    verdict = "meets" if p95 <= 100 else "misses"
                    print(
                        f"p95 {p95:.1f} ms {verdict} the 100 ms target "
                        f"(think time {think_time:g} s)"
                    )
                else:
                    print(
                        f"closed-loop throughput: {len(everything) / wall:.1f} requests/s "
                        f"(p95 {p95:.1f} ms is queueing at think time 0)"
                    )
            print(f"errors: {len(errors)}" + (f" (first: {errors[0]})" if errors else ""))

        run(0.0, seconds=args.warmup, report=False)
        run(0.0, seconds=args.seconds)
        if args.think_time:
            run(args.think_time, seconds=args.seconds)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)  # the database (SQLite), logs, media


if __name__ == "__main__":
    main()
