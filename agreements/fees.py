"""The fixed-fee engine (spec section 2): pure, no ORM.

Monthly instalment = annual fixed fee / 12 floored to cents, the last month carrying the
remainder (``comanage.core.money.monthly_instalments``, example C). What is payable each month
depends on ``hours_shortfall_policy``:

* ``hold`` (default): a month whose approved hours are below the required hours is held. It is
  released ("made up") once the cumulative approved hours from the first month up to a later
  month reach the cumulative required hours up to that month; every held month up to there is
  then payable in full.
* ``prorate``: the instalment × approved ÷ required (never above 1), rounded half-up to cents.
* ``ignore``: the instalment is paid whatever the hours.

Extra hours never raise the fee: every amount is at most its instalment.

Fee months (spec 4, edge case "fee months"): a programme year of twelve months carries twelve
monthly fees whatever day it starts on; a shorter year carries one fee per started month. A fee
month runs from the year's start day in one month to the day before it in the next
(:func:`fee_month_starts`); its hours are the time sheet of the calendar month it starts in
(:func:`fee_months`), which for a year starting on the 1st is simply each calendar month.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from comanage.core.money import ZERO, monthly_instalments, round_money, to_decimal

PAYABLE, HELD, PRORATED = "payable", "held", "prorated"


@dataclass(frozen=True)
class InstalmentLine:
    month: dt.date
    instalment: Decimal
    required_hours: Decimal
    approved_hours: Decimal
    status: str  # payable / held / prorated
    amount_payable: Decimal
    note: str = ""


def months_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """First days of every month touching [start, end]."""
    months = []
    current = start.replace(day=1)
    while current <= end:
        months.append(current)
        current = (current.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return months


def add_months(day: dt.date, months: int) -> dt.date:
    """The same day ``months`` calendar months on; a day the month lacks rolls forward to the
    next month's 1st (29 Feb 2024 + 12 months = 1 Mar 2025), so twelve months after a year's
    start is always the day after its twelve-month end."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first = dt.date(year, month + 1, 1)
    if day.day > month_end(first).day:
        return month_end(first) + dt.timedelta(days=1)
    return first.replace(day=day.day)


def fee_month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    """The first day of every fee month of [start, end]: start, start + 1 month, ... (each
    counted from ``start``, see :func:`add_months`) while it is on or before ``end``.

    Twelve for a year of twelve months whatever day it starts on; a shorter year gets one per
    started month (spec 4, edge case "fee months")."""
    starts = []
    number = 0
    while (day := add_months(start, number)) <= end:
        starts.append(day)
        number += 1
    return starts


def fee_month_count(start: dt.date, end: dt.date) -> int:
    """Monthly fees a period [start, end] carries (spec 4, edge case "fee months")."""
    return len(fee_month_starts(start, end))


def fee_months_elapsed(start: dt.date, as_of: dt.date) -> int:
    """Fee months of a year starting ``start`` wholly over by ``as_of`` (a projection's fees)."""
    count = 0
    while add_months(start, count + 1) - dt.timedelta(days=1) <= as_of:
        count += 1
    return count


def fee_months(start: dt.date, end: dt.date) -> list[dt.date]:
    """One entry per fee month: the first day of the calendar month the n-th fee month starts
    in (the start's month, then each following month), the key of the time sheets whose hours
    it carries. For a year starting on the 1st: each calendar month of the year."""
    first = start.replace(day=1)
    return [add_months(first, n) for n in range(fee_month_count(start, end))]


def month_end(month: dt.date) -> dt.date:
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)


def year_instalments(annual_fee: Decimal, month_count: int) -> list[Decimal]:
    """Twelve instalments for a full year; a short year (fewer fee months, see
    :func:`fee_month_starts`) gets its share of the annual fee, month_count / 12."""
    if month_count == 12:
        return monthly_instalments(annual_fee)
    return monthly_instalments(round_money(annual_fee * month_count / 12), month_count)


def fee_schedule(
    *,
    annual_fee: Decimal,
    months: list[dt.date],
    required_hours: Decimal,
    approved_hours: dict[dt.date, Decimal],
    policy: str,
) -> list[InstalmentLine]:
    """One line per month of the programme year; see the module docstring for the rules."""
    annual = to_decimal(annual_fee)
    required = to_decimal(required_hours)
    instalments = year_instalments(annual, len(months))
    lines: list[InstalmentLine] = []
    cumulative_required = ZERO
    cumulative_approved = ZERO
    for month, instalment in zip(months, instalments, strict=True):
        approved = to_decimal(approved_hours.get(month, ZERO))
        cumulative_required += required
        cumulative_approved += approved
        short = approved < required
        if policy == "ignore" or not short:
            lines.append(InstalmentLine(month, instalment, required, approved, PAYABLE, instalment))
        elif policy == "prorate":
            amount = round_money(instalment * approved / required) if required else instalment
            lines.append(
                InstalmentLine(
                    month,
                    instalment,
                    required,
                    approved,
                    PRORATED,
                    min(amount, instalment),
                    f"{approved} of {required} required hours",
                )
            )
        else:
            lines.append(
                InstalmentLine(
                    month,
                    instalment,
                    required,
                    approved,
                    HELD,
                    ZERO,
                    f"{required - approved} hours short",
                )
            )
        if policy == "hold" and cumulative_approved >= cumulative_required:
            # The shortfall is made up: release every month held so far.
            lines = [
                InstalmentLine(
                    ln.month,
                    ln.instalment,
                    ln.required_hours,
                    ln.approved_hours,
                    PAYABLE,
                    ln.instalment,
                    "released: shortfall made up",
                )
                if ln.status == HELD
                else ln
                for ln in lines
            ]
    return lines
