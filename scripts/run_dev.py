"""`make run`: migrate, load the demo, print the logins, then the web server and a real Celery
worker (with beat); Ctrl-C stops both.

    python scripts/run_dev.py [--host 127.0.0.1] [--port 8000]

One progress line per step and the demo logins, nothing else unless something goes wrong;
``VERBOSE=1`` shows everything (migrations, the demo loader, the server's and worker's logs).
A port already in use stops it at once with one line, before anything else is done.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PORT_IN_USE_EXIT = 2


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (one line), or None if it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return f"HOST={host} is not an address of this machine; try make run HOST=127.0.0.1"
    family, kind, proto, _name, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as runserver does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                other = port + 10 if port + 10 <= 65535 else 8010
                return (
                    f"Port {port} on {host} is already in use (another `make run`?); "
                    f"stop that, or choose another port: make run PORT={other}"
                )
            if exc.errno == errno.EACCES:
                return f"Port {port} needs privileges; choose one above 1023: make run PORT=8000"
            return f"Cannot listen on {host}:{port}: {exc.strerror}"
    return None


def url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


@contextlib.contextmanager
def captured(verbose: bool) -> Iterator[None]:
    """Unless verbose, send everything written to stdout/stderr (print, logging, e-mails on the
    console backend, C libraries) to a file, shown only if the block fails."""
    if verbose:
        yield
        return
    with tempfile.TemporaryFile() as log:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def prepare(verbose: bool, address: str) -> None:
    """Migrate (only if a migration is pending) and load the demo (only if it is not there)."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from comanage.core.management.commands.seed_demo import DEMO_ORGANIZATIONS
    from comanage.core.models import Organization

    verbosity = 1 if verbose else 0
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        step(f"Database: applying {len(plan)} migrations (SQLite, var/)")
        with captured(verbose):
            call_command("migrate", interactive=False, verbosity=verbosity)
    else:
        step("Database: up to date")
    slugs = [spec["slug"] for spec in DEMO_ORGANIZATIONS]
    if Organization.objects.filter(slug__in=slugs).count() == len(slugs):
        step("Demo data: already loaded (two demo hospitals)")
    else:
        step("Demo data: loading two demo hospitals with several years of data (about a minute)")
        with captured(verbose):
            call_command("seed_demo", verbosity=verbosity)
    call_command("demo_logins", url=address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the demo with a Celery worker.")
    parser.add_argument("--host", default=os.environ.get("HOST") or "127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or 8000))
    parser.add_argument(
        "--check-port",
        action="store_true",
        help="only check that the port is free (exit 2 with one line if not)",
    )
    options = parser.parse_args(argv)
    verbose = os.environ.get("VERBOSE", "") not in ("", "0")

    problem = port_problem(options.host, options.port)
    if problem:
        print(problem, file=sys.stderr)
        return PORT_IN_USE_EXIT
    if options.check_port:
        return 0

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")
    if not verbose:
        # Warnings and errors only: no INFO chatter from Django, Celery, WeasyPrint or the
        # server's request log (a 404 or 500 still shows).
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        os.environ.setdefault("DJANGO_SERVER_LOG_LEVEL", "WARNING")
    for sub in ("broker/queue", "broker/control", "cache", "media"):
        (ROOT / "var" / sub).mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    address = url(options.host, options.port)
    prepare(verbose, address)
    step(f"Starting Comanage at {address} with a background worker (Ctrl-C stops both)")

    # SIGTERM (a supervisor, `kill`) stops both processes just as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    env = dict(os.environ)
    quiet = {} if verbose else {"stdout": subprocess.DEVNULL}
    worker_log_path = ROOT / "var" / "worker.log"
    # Quiet: the worker's output (its start-up warnings, task logs) goes to var/worker.log.
    worker_log = None if verbose else worker_log_path.open("wb")
    worker_output = (
        {} if worker_log is None else {"stdout": worker_log, "stderr": subprocess.STDOUT}
    )
    worker = subprocess.Popen(
        [
            PY,
            "-m",
            "celery",
            "-A",
            "comanage",
            *([] if verbose else ["--quiet"]),
            "worker",
            "--beat",
            "--loglevel",
            "INFO" if verbose else "WARNING",
            "--concurrency",
            "2",
            "--schedule",
            str(ROOT / "var" / "celerybeat-schedule"),
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        **worker_output,
    )
    # Its own process group, so the autoreloader's child stops with it.
    bind = (
        f"[{options.host}]:{options.port}"
        if ":" in options.host
        else (f"{options.host}:{options.port}")
    )
    web = subprocess.Popen(
        [PY, "manage.py", "runserver", *(["--ipv6"] if ":" in options.host else []), bind],
        cwd=ROOT,
        env=env,
        start_new_session=True,
        **quiet,
    )
    processes = [web, worker]
    first_to_stop = None
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        first_to_stop = "web server" if web.poll() is not None else "worker"
    except KeyboardInterrupt:
        pass
    finally:
        # A second Ctrl-C (or SIGTERM) must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # The worker's main process shuts its pool down itself (a warm shutdown); runserver's
        # autoreloader and its child are stopped together. SIGTERM, not SIGINT: SIGINT may be
        # ignored when `make run` was started in the background.
        if web.poll() is None:
            os.killpg(web.pid, signal.SIGTERM)
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGTERM)
        deadline = time.time() + 10
        for p in processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    if worker_log is not None:
        worker_log.close()
    if first_to_stop:
        if first_to_stop == "worker" and worker_log is not None:
            tail = worker_log_path.read_text(errors="replace").splitlines()[-30:]
            print("\n".join(tail), file=sys.stderr)
        print(
            f"The {first_to_stop} stopped (see above); the other was stopped too. "
            "VERBOSE=1 make run shows all of their output.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
