"""What a savings calculation reads from the apps above savings, installed at start-up.

Two inputs of a programme year's calculation (spec 4) live in other apps:

* the key quality indicators of the quality gate (the indicators app);
* what earlier years were paid, for "already distributed" (the adjudication app).

The layers are core <- agreements <- {indicators, savings} <- adjudication <- workspaces, so
savings imports neither. The adjudication app, which composes both, installs the two readers
when Django starts (``adjudication.apps.AdjudicationConfig.ready``). Nothing falls back to other
rules: a calculation run before the readers are installed is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ImproperlyConfigured

from agreements.models import ProgrammeYear

from .engine import KeyIndicatorOutcome


@dataclass(frozen=True)
class Sources:
    # The key quality indicators of the terms in force, with ``met`` decided.
    key_indicators: Callable[[ProgrammeYear], list[KeyIndicatorOutcome]]
    # The distributions recorded as paid for that year, or None when none are recorded.
    distributions_paid: Callable[[ProgrammeYear], Decimal | None]


_installed: list[Sources] = []


def sources_install(*, sources: Sources) -> None:
    """Install the readers (once per process; a second install replaces the first)."""
    _installed[:] = [sources]


def sources() -> Sources:
    if not _installed:
        raise ImproperlyConfigured(
            "The savings calculation's readers are not installed: add 'adjudication' to "
            "INSTALLED_APPS (it installs them when Django starts)."
        )
    return _installed[0]
