"""`make run`: the web server and a real Celery worker (with beat); Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    # SIGTERM (a supervisor, `kill`) stops both processes just as Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ.get(
        "DJANGO_SETTINGS_MODULE", "comanage.settings.local")}
    for sub in ("broker/queue", "broker/control", "cache", "media"):
        (ROOT / "var" / sub).mkdir(parents=True, exist_ok=True)
    worker = subprocess.Popen(
        [PY, "-m", "celery", "-A", "comanage", "worker", "--beat", "--loglevel", "INFO",
         "--concurrency", "2", "--schedule", str(ROOT / "var" / "celerybeat-schedule")],
        cwd=ROOT, env=env, start_new_session=True)
    # Its own process group, so the autoreloader's child stops with it.
    web = subprocess.Popen([PY, "manage.py", "runserver", "127.0.0.1:8000"], cwd=ROOT, env=env,
                           start_new_session=True)
    processes = [web, worker]
    try:
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for p in processes:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGINT)
        deadline = time.time() + 10
        for p in processes:
            try:
                p.wait(timeout=max(0.1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
