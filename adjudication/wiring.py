"""The adjudication app composes the indicators and savings apps: it hands savings the two
readers it cannot import itself (see :mod:`savings.sources`)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum

from agreements.models import ProgrammeYear
from indicators.services import key_indicator_outcomes
from savings import engine as savings_engine
from savings.sources import Sources, sources_install

from .models import PaymentKind, PaymentLine


def key_indicators_for_savings(
    programme_year: ProgrammeYear,
) -> list[savings_engine.KeyIndicatorOutcome]:
    """The indicators app's key quality indicators, as the savings engine takes them."""
    return [
        savings_engine.KeyIndicatorOutcome(
            key=k.key,
            name=k.name,
            met=k.met,
            baseline=k.baseline,
            result=k.result,
            tolerance_pct=k.tolerance_pct,
        )
        for k in key_indicator_outcomes(programme_year=programme_year)
    ]


def distributions_paid(programme_year: ProgrammeYear) -> Decimal | None:
    """The distributions recorded as paid for the year (None when none are recorded)."""
    lines = PaymentLine.objects.filter(
        report__programme_year=programme_year,
        kind=PaymentKind.DISTRIBUTION,
        paid_amount__isnull=False,
    )
    if not lines.exists():
        return None
    return lines.aggregate(s=Sum("paid_amount"))["s"]


def savings_sources_install() -> None:
    sources_install(
        sources=Sources(
            key_indicators=key_indicators_for_savings, distributions_paid=distributions_paid
        )
    )
