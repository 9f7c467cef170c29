"""Fault tests: real PostgreSQL, real Redis, real worker processes.

They need ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``; without them each test skips with
the reason (CI sets both). A worker is a real ``celery worker --pool solo`` subprocess with
non-eager settings, pointed at the test database pytest-django created.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from tests.fuzz.tables import tenant_row_counts

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["tenant_row_counts"]


def _needs() -> str:
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return "needs PostgreSQL: set DATABASE_URL=postgres://... (CI does)"
    if not getattr(settings, "REDIS_URL", None):
        return "needs Redis: set REDIS_URL=redis://... (CI does)"
    return ""


@pytest.fixture
def real_services() -> None:
    """Skip with a clear reason unless PostgreSQL and Redis are configured."""
    reason = _needs()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def redis_client(real_services: None) -> Iterator[Any]:
    """The broker's Redis database, emptied before and after (no stray messages)."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def media_dir(settings: Any, tmp_path: Path) -> Path:
    """Uploads go to a private folder the worker subprocess is pointed at too."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


@pytest.fixture
def not_eager() -> Iterator[None]:
    """Send tasks to the real broker instead of running them in the test process."""
    from comanage.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = before


def _database_url() -> str:
    db = connection.settings_dict
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, no ack, the database session simply vanishes."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture
def start_worker(
    real_services: None, media_dir: Path, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start ``celery worker --pool solo`` subprocesses on the test database; stopped after."""
    started: list[Worker] = []

    def start(name: str = "worker", **extra_env: str) -> Worker:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "comanage.settings.local",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "MEDIA_ROOT": str(media_dir),
            "DEBUG": "false",
            "DB_CONN_MAX_AGE": "0",
            # A message whose worker died comes back after 2 s, swept every second.
            "CELERY_VISIBILITY_TIMEOUT": "2",
            "CELERY_UNACKED_RESTORE_INTERVAL": "1",
            "CELERY_UNACKED_RESTORE_THROTTLE": "1",
            "LOG_LEVEL": "INFO",
            **extra_env,
        }
        log = tmp_path / f"{name}-{len(started)}.log"
        handle = open(log, "wb")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "comanage",
                "worker",
                "--pool",
                "solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{name}{len(started)}@faults",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        worker = Worker(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    worker: Worker | None = None,
    interval: float = 0.05,
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if worker is not None and worker.process.poll() is not None:
            raise AssertionError(f"the worker exited while waiting for {what}:\n{worker.output()}")
        time.sleep(interval)
    extra = f"\nworker log:\n{worker.output()}" if worker is not None else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")


def big_usage_file(path: Path, *, rows: int, npis: list[str], year: int = 2024) -> Path:
    """A valid base-year usage file: ``rows`` rows, three items per case."""
    items = ("A1", "B1", "C1")
    lines = [
        "case_id,service_date,case_type,physician_npi,payer,federal_program,item_code,"
        "quantity,unit_cost,severity_weight,notice_date,reviewed,opted_out"
    ]
    for i in range(rows):
        month = 1 + (i // 3) % 12
        # One physician per case: all rows of one case agree (spec 4 edge case).
        lines.append(
            f"K{i // 3:07d},{year}-{month:02d}-15,CATH,{npis[i // 3 % len(npis)]},"
            "medicare,"
            f"true,{items[i % 3]},{1 + i % 4},{100 + i % 50}.25,2.0,"
            f"{year}-{month:02d}-01,true,false"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the figure the issue asks for: fault scenarios survived."""

    def faults(key: str) -> int:
        return sum(
            1
            for r in terminalreporter.stats.get(key, [])
            if "tests/faults/" in r.nodeid and r.when == "call"
        )

    passed, failed = faults("passed"), faults("failed")
    skipped = sum(
        1 for r in terminalreporter.stats.get("skipped", []) if "tests/faults/" in r.nodeid
    )
    if passed or failed or skipped:
        terminalreporter.write_line(
            f"faults: {passed} scenarios survived, {failed} failed, "
            f"{skipped} skipped (need DATABASE_URL/REDIS_URL)"
        )
