"""Which task runs which kind of job, so stale jobs can be sent again after an outage."""

from __future__ import annotations

from typing import Any

_REGISTRY: dict[str, Any] = {}


def register(kind: str, task: Any) -> None:
    _REGISTRY[kind] = task


def task_for(kind: str) -> Any | None:
    return _REGISTRY.get(kind)
