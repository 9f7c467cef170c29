"""'Which terms version is in force' is one rule (agreements.selectors.terms_pick), used by the
selectors every app calls and by the workspaces over prefetched lists."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

from agreements.selectors import terms_pick

V1 = SimpleNamespace(version=1, effective_from=dt.date(2025, 1, 1))
V2 = SimpleNamespace(version=2, effective_from=dt.date(2026, 1, 1))
V3 = SimpleNamespace(version=3, effective_from=dt.date(2026, 7, 1))


def test_the_latest_version_not_after_the_day_is_in_force_whatever_the_order():
    assert terms_pick([V3, V1, V2], on=dt.date(2026, 6, 30)) is V2
    assert terms_pick([V1, V2, V3], on=dt.date(2026, 7, 1)) is V3
    assert terms_pick([V2, V3, V1], on=dt.date(2025, 12, 31)) is V1


def test_before_the_first_version_there_is_none_unless_the_first_is_asked_for():
    before = dt.date(2024, 12, 31)
    assert terms_pick([V2, V1], on=before) is None
    assert terms_pick([V2, V1], on=before, else_first=True) is V1
    assert terms_pick([], on=before, else_first=True) is None
