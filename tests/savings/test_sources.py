"""Savings reads the key quality indicators and the distributions paid through readers the
adjudication app installs at start-up (savings imports neither app); without them a
calculation is refused, never run under other rules."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from adjudication import wiring
from savings import sources


def test_adjudication_installs_the_readers_when_django_starts():
    installed = sources.sources()
    assert installed.key_indicators is wiring.key_indicators_for_savings
    assert installed.distributions_paid is wiring.distributions_paid


def test_without_the_readers_a_calculation_is_refused(monkeypatch):
    monkeypatch.setattr(sources, "_installed", [])
    with pytest.raises(ImproperlyConfigured, match="not installed"):
        sources.sources()
