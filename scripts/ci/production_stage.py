"""The production-shaped stage of CI (`make prod-stage`, called at the end of `.ci/run`).

It runs Comanage the way production runs it and drives it as its users do:

1. a fresh PostgreSQL database of its own, migrated and loaded with the demo (``seed_demo``),
   with ``comanage.settings.production`` (a random 64-character SECRET_KEY, DEBUG off, HTTPS
   redirect, secure cookies, HSTS, 2FA for the signing roles), after ``check --deploy``;
2. gunicorn with 2 workers and a real Celery worker (prefork, 2 processes) on a Redis database
   of its own (flushed first), each in its own process group, the web server on a free port;
3. ``/healthz`` must answer 200 (database, broker and a live worker);
4. the scenario in ``tests/production/`` (headless Debian Chromium and an API client) runs
   against that server: see that file's docstring for the steps;
5. ``/healthz`` again, then both processes are stopped and their logs are read: no response
   with a 5xx status, no ``Traceback``, no gunicorn worker timeout, no failed task;
6. the database is dropped (``--keep`` keeps it, and the logs stay under
   ``test-artifacts/production-stage/`` in any case).

The exit status is non-zero if any step fails.

TLS: production sits behind a TLS-terminating proxy that sets ``X-Forwarded-Proto: https``
(``SECURE_PROXY_SSL_HEADER``). This stage serves plain HTTP on 127.0.0.1 and plays that proxy's
part by sending the header with every request of the browser and the API client, so the
production settings run unchanged: a request without the header is redirected to HTTPS (the
scenario checks it) and cookies are ``Secure`` (Chromium keeps them for 127.0.0.1, a
potentially trustworthy origin). ``CSRF_TRUSTED_ORIGINS`` names the stage's own origin, as a
deployment names its public one.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
ARTIFACTS = ROOT / "test-artifacts" / "production-stage"
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
# Access-log lines are written in this shape so that a 5xx is found by a plain pattern.
ACCESS_LOG_FORMAT = 'access status=%(s)s method=%(m)s path="%(U)s" duration_us=%(D)s'
ACCESS_5XX = re.compile(r"^access status=5\d\d .*$", re.MULTILINE)
LOG_PROBLEMS = {
    "gunicorn": [
        ACCESS_5XX,
        re.compile(r"^.*Traceback.*$", re.MULTILINE),
        re.compile(r"^.*WORKER TIMEOUT.*$", re.MULTILINE),
    ],
    "worker": [
        re.compile(r"^.*Traceback.*$", re.MULTILINE),
        re.compile(r"^.*raised unexpected.*$", re.MULTILINE),
    ],
}


class StageError(RuntimeError):
    """A step of the stage failed; the message says which and why."""


@dataclass
class Stage:
    server_url: str
    database: str
    redis_url: str
    keep: bool
    artifacts: Path
    timings: list[tuple[str, float]] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/{self.database}"

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        print(f"[prod-stage] {name} ...", flush=True)
        started = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - started
            self.timings.append((name, elapsed))
            print(f"[prod-stage] {name}: {elapsed:.1f}s", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: list[str], *, env: dict[str, str], log: Path) -> None:
    """Run a command to completion with its output appended to ``log``; fail loudly."""
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=900,
        )
    print(f"[prod-stage]   {' '.join(command[2:4])}: {time.monotonic() - started:.1f}s", flush=True)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise StageError(f"{' '.join(command[1:4])} exited {result.returncode}:\n{tail}")


def psql(stage: Stage, sql: str) -> None:
    """A statement on the server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg2

    parsed = urlparse(stage.server_url)
    connection = psycopg2.connect(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password or None,
        dbname="postgres",
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


def http_get(url: str, *, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=PROXY_HEADERS)  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_for_log(path: Path, text: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise StageError(
                f"{path.name}: the process exited ({process.returncode}) before printing {text!r}"
            )
        time.sleep(0.5)
    raise StageError(f"{path.name}: no {text!r} within {timeout:.0f}s")


def wait_healthy(url: str, process: subprocess.Popen, timeout: float) -> dict:
    import json

    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise StageError(f"gunicorn exited ({process.returncode}) before /healthz answered")
        try:
            status, body = http_get(url)
        except OSError as exc:  # not listening yet
            last = repr(exc)
        else:
            if status == 200:
                return json.loads(body)
            last = f"{status} {body[:300]!r}"
            # A 503 means a check failed: report it at once rather than hide it by retrying.
            raise StageError(f"/healthz answered {last}")
        time.sleep(0.5)
    raise StageError(f"/healthz did not answer within {timeout:.0f}s: {last}")


def start(stage: Stage, name: str, command: list[str], env: dict[str, str]) -> Path:
    log = stage.artifacts / f"{name}.log"
    out = log.open("w")
    # Its own process group, so stopping it stops its children (gunicorn's and Celery's
    # workers) and nothing else.
    stage.processes[name] = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    out.close()
    return log


def stop_all(stage: Stage) -> list[str]:
    """SIGTERM each main process, wait for a graceful exit, SIGKILL the group if it lingers.

    Only the main process gets the SIGTERM (as systemd's ``KillMode=mixed`` does): gunicorn's
    arbiter and Celery's warm shutdown then let their own workers finish what they hold. A
    signal to the whole group would kill a task mid-run and log a ``WorkerLostError``.
    """
    problems = []
    for process in stage.processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for name, process in stage.processes.items():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            problems.append(f"{name} did not stop within 30 s of SIGTERM (killed)")
    stage.processes.clear()
    return problems


def log_problems(stage: Stage) -> list[str]:
    problems = []
    for name, patterns in LOG_PROBLEMS.items():
        path = stage.artifacts / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        if not text:
            problems.append(f"{name}.log is empty or missing")
        for pattern in patterns:
            for line in pattern.findall(text)[:10]:
                problems.append(f"{name}.log: {line.strip()}")
    return problems


def check_junit(path: Path) -> str:
    """The scenario must have run every test: none skipped, none failed, at least one."""
    suite = ET.parse(path).getroot()  # noqa: S314 - the file our own pytest just wrote
    if suite.tag == "testsuites":
        suite = suite[0]
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    if counts["tests"] == 0 or counts["skipped"] or counts["failures"] or counts["errors"]:
        raise StageError(f"the scenario did not pass in full ({summary})")
    return summary


def stage_env(stage: Stage, port: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "COMANAGE_", "CELERY_"))
        and k
        not in (
            "DATABASE_URL",
            "REDIS_URL",
            "DEBUG",
            "REQUIRE_2FA",
            "SECRET_KEY",
            "ALLOWED_HOSTS",
            "CSRF_TRUSTED_ORIGINS",
            "SECURE_SSL_REDIRECT",
        )
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "comanage.settings.production",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "DATABASE_URL": stage.database_url,
            "REDIS_URL": stage.redis_url,
            "ALLOWED_HOSTS": "127.0.0.1",
            "CSRF_TRUSTED_ORIGINS": f"http://127.0.0.1:{port}",
            "COMANAGE_VAR_DIR": str(stage.artifacts / "var"),
            "CACHE_KEY_PREFIX": f"prodstage{os.getpid()}",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def seed_command(manage: list[str], env: dict[str, str], log: Path) -> list[str]:
    """``seed_demo``, forced where the command refuses production without a flag."""
    help_text = subprocess.run(
        [*manage, "seed_demo", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if help_text.returncode != 0:
        with log.open("a") as out:
            out.write(help_text.stdout + help_text.stderr)
        raise StageError(
            f"seed_demo --help exited {help_text.returncode}:\n{help_text.stderr[-2000:]}"
        )
    forced = "--force-production" in help_text.stdout
    return [*manage, "seed_demo", *(["--force-production"] if forced else [])]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default=os.environ.get("PROD_STAGE_POSTGRES", "postgres://postgres@127.0.0.1:5432"),
        help="PostgreSQL server URL (no database name); a fresh database is created there",
    )
    parser.add_argument(
        "--database",
        default=os.environ.get("PROD_STAGE_DATABASE", f"comanage_prodstage_{os.getpid()}"),
        help="name of the fresh database (dropped first if it exists, and at the end)",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("PROD_STAGE_REDIS_URL", "redis://127.0.0.1:6379/12"),
        help="a Redis database for this stage alone: it is FLUSHED first",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument(
        "--pytest-args",
        default=os.environ.get("PROD_STAGE_PYTEST_ARGS", ""),
        help="extra arguments for the scenario's pytest run",
    )
    args = parser.parse_args(argv)
    # A SIGTERM (CI's timeout, a supervisor) unwinds like Ctrl-C: the servers are stopped and
    # the database dropped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)

    if args.database != re.sub(r"[^a-z0-9_]", "", args.database):
        parser.error("--database: lower-case letters, digits and underscores only")
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    (ARTIFACTS / "var").mkdir(parents=True)
    stage = Stage(
        server_url=args.postgres,
        database=args.database,
        redis_url=args.redis_url,
        keep=args.keep,
        artifacts=ARTIFACTS,
    )
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = stage_env(stage, port)
    manage = [PY, str(ROOT / "manage.py")]
    setup_log = ARTIFACTS / "setup.log"
    started = time.monotonic()
    failures: list[str] = []
    created = False
    try:
        with stage.step("fresh database, migrate, collectstatic, check --deploy, seed"):
            psql(stage, f'DROP DATABASE IF EXISTS "{stage.database}"')
            psql(stage, f'CREATE DATABASE "{stage.database}"')
            created = True
            flush_redis(stage.redis_url)
            run([*manage, "migrate", "--noinput"], env=env, log=setup_log)
            run([*manage, "collectstatic", "--noinput", "-v0"], env=env, log=setup_log)
            run([*manage, "check", "--deploy", "--fail-level", "WARNING"], env=env, log=setup_log)
            run(seed_command(manage, env, setup_log), env=env, log=setup_log)

        with stage.step("gunicorn (2 workers) and a Celery worker up, /healthz 200"):
            worker_log = start(
                stage,
                "worker",
                [
                    PY,
                    "-m",
                    "celery",
                    "-A",
                    "comanage",
                    "worker",
                    "--loglevel",
                    "INFO",
                    "--concurrency",
                    "2",
                    "--hostname",
                    f"prodstage{os.getpid()}@%h",
                ],
                env,
            )
            start(
                stage,
                "gunicorn",
                [
                    PY,
                    "-m",
                    "gunicorn",
                    "comanage.wsgi:application",
                    "--workers",
                    "2",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--timeout",
                    "60",
                    "--graceful-timeout",
                    "20",
                    "--access-logfile",
                    "-",
                    "--error-logfile",
                    "-",
                    "--no-control-socket",
                    "--access-logformat",
                    ACCESS_LOG_FORMAT,
                ],
                env,
            )
            # The worker's heartbeat is written just before it logs "ready.": from then on
            # /healthz must be 200 at its first answer.
            wait_for_log(worker_log, " ready.", stage.processes["worker"], timeout=120)
            health = wait_healthy(base_url + "/healthz", stage.processes["gunicorn"], 120)
            print(f"[prod-stage] /healthz: {health}", flush=True)

        with stage.step("scenario: tests/production (browser and API client)"):
            junit = ARTIFACTS / "scenario.xml"
            test_env = {
                k: v
                for k, v in os.environ.items()
                if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
            }
            test_env["COMANAGE_PRODUCTION_STAGE_URL"] = base_url
            result = subprocess.run(
                [
                    PY,
                    "-m",
                    "pytest",
                    "tests/production",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:xdist",
                    "-v",
                    "-rA",
                    f"--junitxml={junit}",
                    *args.pytest_args.split(),
                ],
                cwd=ROOT,
                env=test_env,
                check=False,
            )
            if result.returncode != 0 or not junit.exists():
                failures.append(f"the scenario failed (pytest exited {result.returncode})")
            else:
                print(f"[prod-stage] scenario: {check_junit(junit)}", flush=True)

        with stage.step("/healthz after the scenario"):
            status, body = http_get(base_url + "/healthz")
            if status != 200:
                failures.append(f"/healthz after the scenario: {status} {body[:300]!r}")
    except StageError as exc:
        failures.append(str(exc))
    finally:
        with stage.step("stop, read the logs, drop the database"):
            failures.extend(stop_all(stage))
            if (ARTIFACTS / "gunicorn.log").exists():
                failures.extend(log_problems(stage))
            if created and not stage.keep:
                try:
                    psql(stage, f'DROP DATABASE IF EXISTS "{stage.database}" WITH (FORCE)')
                except Exception as exc:  # noqa: BLE001 - report it with the rest
                    failures.append(f"could not drop {stage.database}: {exc}")

    total = time.monotonic() - started
    for name, seconds in stage.timings:
        print(f"[prod-stage]   {seconds:6.1f}s  {name}")
    print(f"[prod-stage] logs: {ARTIFACTS.relative_to(ROOT)}/ (setup, gunicorn, worker)")
    if failures:
        print(f"[prod-stage] FAILED after {total:.0f}s:", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"[prod-stage] passed in {total:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
