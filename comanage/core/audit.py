"""Who acted: the audit trail outside a request (tasks, commands), and named business events."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

from simple_history.models import HistoricalRecords

from .models import BusinessEvent, Organization, User


@contextmanager
def acting_as(user: User | None) -> Iterator[None]:
    """Attribute django-simple-history records made inside the block to ``user``."""
    previous = getattr(HistoricalRecords.context, "request", None)
    HistoricalRecords.context.request = SimpleNamespace(user=user)
    try:
        yield
    finally:
        if previous is None:
            del HistoricalRecords.context.request
        else:
            HistoricalRecords.context.request = previous


def event_record(
    *,
    organization: Organization,
    name: str,
    actor: User | None,
    obj: Any = None,
    summary: str = "",
    data: dict[str, Any] | None = None,
) -> BusinessEvent:
    """Write a named business event such as ``report.approved`` or ``payment.recorded``."""
    return BusinessEvent.objects.create(
        organization=organization,
        name=name,
        actor=actor,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        summary=summary[:300],
        data=data or {},
    )
