"""The browser tests' demo database when the run is on SQLite: a SQLite file migrated and loaded
with ``seed_demo``, built once per run in a folder the xdist workers share, and copied by each
worker that serves pages. (On PostgreSQL, as in CI, the server serves a copy of the run's demo
database instead, which the other tests load anyway: tests/browser/conftest.py.)

Under xdist the build starts in the background as the run starts (``start_in_background``,
called from the controller's ``pytest_sessionstart``), so that it is ready, or nearly, when the
first browser test asks for it, instead of one worker loading the demo while the other waits
for it. Whoever holds the lock builds it; the others wait for the lock and find it done. Nothing
here imports Playwright or Django's settings: the controller loads it before any test.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Debian's headless shell of its Chromium (package chromium-headless-shell): the same Blink,
# layout and V8 without the desktop browser's UI layer, which in headless mode still ran and
# cost about a third of Chromium's CPU in a run (the browser process: 71 s of 190 s). The page
# checks read the page as drawn (layout, colours, axe-core), which the shell draws alike.
# ``CHROMIUM=/usr/bin/chromium`` runs the full browser instead; the production stage does.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium-headless-shell")

_SEED = """
import django
from django.core.management import call_command

django.setup()
call_command("migrate", interactive=False, verbosity=0)
call_command("seed_demo")
"""


def on_postgres() -> bool:
    """The run's database is PostgreSQL (``DATABASE_URL``, as CI sets it): the browser tests'
    server then serves a copy of the run's demo database (tests/browser/conftest.py), and the
    SQLite demo here is not built."""
    return os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


def server_env(
    workdir: Path, database_url: str | None = None, media_root: Path | None = None
) -> dict[str, str]:
    """The environment of the browser tests' server, worker and seeding, on ``workdir``: its
    SQLite database there, or ``database_url``; its stored files under ``workdir``'s var/, or
    in ``media_root``."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MEDIA_ROOT")
    }
    if media_root is not None:
        env["MEDIA_ROOT"] = str(media_root)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "tests.browser.server_settings",
            "DATABASE_URL": database_url or f"sqlite:///{workdir / 'e2e.sqlite3'}",
            "COMANAGE_VAR_DIR": str(workdir / "var"),
            "DEBUG": "false",
            "REQUIRE_2FA": "true",  # journeys pass the real TOTP gate, as users do
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def make_var(folder: Path) -> None:
    """The server's var/ in ``folder``: media, cache and the filesystem broker's queues."""
    for sub in ("broker/queue", "broker/control", "cache", "media"):
        (folder / "var" / sub).mkdir(parents=True, exist_ok=True)


def seed(folder: Path) -> None:
    """Migrate a new SQLite database in ``folder`` and load the demo into it (one process, so
    Django starts once), with its var/ (media, cache, broker) beside it; ``seed.log`` has the
    output."""
    make_var(folder)
    with open(folder / "seed.log", "w") as log:
        subprocess.run(  # noqa: S603 - our own code
            [sys.executable, "-c", _SEED],
            cwd=ROOT,
            env=server_env(folder),
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def seed_shared(shared: Path) -> None:
    """The demo in ``shared``, built by whoever gets the lock first (the background build, or a
    worker when there is none); ``done`` marks it complete."""
    shared.mkdir(parents=True, exist_ok=True)
    with open(shared.parent / "e2e-seed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not (shared / "done").exists():
            seed(shared)
            (shared / "done").write_text("")


def shared_folder(run_root: Path) -> Path:
    """The folder of the run's shared build: under the controller's base temporary folder."""
    return run_root / "e2e-seed"


_background: subprocess.Popen | None = None


def _runs_browser_tests(config: pytest.Config) -> bool:
    if not Path(CHROMIUM).exists() or "not browser" in (config.getoption("markexpr") or ""):
        return False
    args = [str(a) for a in config.args]
    browser = ROOT / "tests" / "browser"
    return any(
        browser.is_relative_to(Path(a.split("::")[0]).resolve())
        or Path(a.split("::")[0]).resolve().is_relative_to(browser)
        for a in args
    )


def start_in_background(config: pytest.Config) -> None:
    """In the controller of an xdist run that includes browser tests: start the shared build."""
    global _background
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if on_postgres() or not _runs_browser_tests(config):
        return
    shared = shared_folder(config._tmp_path_factory.getbasetemp())  # type: ignore[attr-defined]
    _background = subprocess.Popen(  # noqa: S603 - our own code
        [sys.executable, "-m", "tests.browser.seed", str(shared)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop_background() -> None:
    if _background is not None and _background.poll() is None:
        _background.kill()
        _background.wait()


if __name__ == "__main__":
    seed_shared(Path(sys.argv[1]))
