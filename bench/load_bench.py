"""Load benchmark of the read-heavy pages (not a test; prints figures).

    .venv/bin/python bench/load_bench.py [--users 20] [--seconds 30] [--agreements 20]
                                         [--database-url URL] [--redis-url URL]
                                         [--workers N] [--think-time SECONDS]
                                         [--warmup SECONDS]

Builds a database (SQLite in a temporary directory unless ``--database-url`` names one):
migrate, ``seed_demo``, then ``scale_demo`` to N agreements of 3 programme years each. Serves
it as a hospital runs it: gunicorn with the production configuration (``gunicorn.conf.py``:
its worker count unless ``--workers`` is given) and the production settings
(``comanage.settings.production``: Redis cache and sessions from ``--redis-url``, under a key
prefix of this run's own, persistent database connections, static files from whitenoise's
manifest), behind a TLS proxy as the client plays it (``X-Forwarded-Proto: https``, secure
cookies). Signs ``--users`` executives in through the real login form, and drives the
executive dashboard, the executive agreement page and the agreements app's agreement page
from that many concurrent threads for a bounded time. Prints p50 / p95 / max latency and
requests per second per page and overall, with the load average (the machine may be shared).
Targets: with ``--think-time 1`` and 50 users, p95 <= 100 ms; the closed-loop run (think time
0) is printed as throughput in requests per second.

A PostgreSQL ``--database-url`` names a database that is dropped and recreated first. The
production settings need PostgreSQL; with SQLite the local settings serve it instead.

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
import secrets
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


# What the hospital's TLS proxy tells gunicorn (production trusts it: SECURE_PROXY_SSL_HEADER).
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


class _BehindProxyPolicy(http.cookiejar.DefaultCookiePolicy):
    """The browser's side of the TLS proxy: its ``Secure`` cookies go with every request
    (the hop from this client to gunicorn is the proxy's plain-HTTP one)."""

    def return_ok_secure(self, cookie, request) -> bool:  # type: ignore[no-untyped-def]  # noqa: ANN001
        return True


def _opener() -> urllib.request.OpenerDirector:
    jar = http.cookiejar.CookieJar(policy=_BehindProxyPolicy())
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    opener.addheaders = [*opener.addheaders, *PROXY_HEADERS.items()]
    return opener


def _login(base: str) -> urllib.request.OpenerDirector:
    opener = _opener()
    page = opener.open(base + "/account/login/", timeout=30).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    data = urllib.parse.urlencode(
        {"username": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": token}
    ).encode()
    # The browser's origin is the proxy's https one.
    referer = base.replace("http://", "https://", 1) + "/account/login/"
    request = urllib.request.Request(
        base + "/account/login/", data=data, headers={"Referer": referer}
    )
    response = opener.open(request, timeout=30)
    if "/account/login/" in response.url:
        raise RuntimeError("sign-in failed")
    return opener


def _wait(base: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            request = urllib.request.Request(base + "/account/login/", headers=PROXY_HEADERS)
            urllib.request.urlopen(request, timeout=2).read()  # noqa: S310
            return
        except Exception:  # noqa: BLE001 - keep polling until it answers
            time.sleep(0.5)
    raise RuntimeError("gunicorn did not come up")


def _config_workers() -> int:
    """The worker count gunicorn.conf.py gives (with this environment's WEB_CONCURRENCY)."""
    namespace: dict = {}
    exec((ROOT / "gunicorn.conf.py").read_text(), namespace)  # noqa: S102 - our own config file
    return int(namespace["workers"])


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
    parser.add_argument(
        "--workers", type=int, default=0, help="default: gunicorn.conf.py's (WEB_CONCURRENCY)"
    )
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the cache and sessions (keys under a prefix of this run's own)",
    )
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
            # Seeding runs with the local settings (seed_demo refuses production's).
            "DJANGO_SETTINGS_MODULE": "comanage.settings.local",
            "DATABASE_URL": args.database_url or f"sqlite:///{workdir / 'load.sqlite3'}",
            "COMANAGE_VAR_DIR": str(workdir / "var"),
            "MEDIA_ROOT": str(workdir / "var" / "media"),
            "DEBUG": "false",
            "REQUIRE_2FA": "false",
            "CELERY_TASK_ALWAYS_EAGER": "true",
            "REDIS_URL": args.redis_url,
            # This run's cache entries only: never another database's versions or sessions.
            "CACHE_KEY_PREFIX": f"loadbench-{secrets.token_hex(6)}",
        }
    )
    production = env["DATABASE_URL"].startswith("postgres")
    serve_env = dict(env)
    if production:
        serve_env.update(
            {
                "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
                "SECRET_KEY": secrets.token_urlsafe(50),
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

    if production:  # whitenoise's manifest (STATIC_ROOT), as the image's build step makes it
        _manage(serve_env, "collectstatic", "--noinput", "-v0")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(workdir / "gunicorn.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "gunicorn",
            "comanage.wsgi",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            *(["--workers", str(args.workers)] if args.workers else []),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=serve_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    workers = args.workers or _config_workers()
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
                f"\n{args.users} concurrent users for {wall:.1f} s, gunicorn {workers} "
                f"workers, {serve_env['DJANGO_SETTINGS_MODULE'].rsplit('.', 1)[1]} settings, "
                f"{env['DATABASE_URL'].split(':')[0]}, think time {think_time:g} s; "
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
