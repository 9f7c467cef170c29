"""Worker heartbeat, so /healthz can tell whether a worker is alive on any broker."""

from __future__ import annotations

import time

from celery.signals import worker_ready, worker_shutdown
from django.core.cache import cache

HEARTBEAT_KEY = "worker-heartbeat"
HEARTBEAT_INTERVAL = 15


def _beat() -> None:
    cache.set(HEARTBEAT_KEY, time.time(), timeout=HEARTBEAT_INTERVAL * 8)


@worker_ready.connect
def _start_heartbeat(sender=None, **kwargs) -> None:
    _beat()
    timer = getattr(sender, "timer", None)
    if timer is not None:
        timer.call_repeatedly(HEARTBEAT_INTERVAL, _beat)


@worker_shutdown.connect
def _stop_heartbeat(**kwargs) -> None:
    cache.delete(HEARTBEAT_KEY)


def worker_last_seen() -> float | None:
    return cache.get(HEARTBEAT_KEY)
