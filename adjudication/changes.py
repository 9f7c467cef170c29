"""The figure-by-figure changes between two calculation versions, in words.

A run stores its diff as stored paths (``figures.savings.physicians[12].amount``,
``figures.incentive.indicators[readmit].score``, ``totals.total_to_pay``: see
``adjudication.calculation.flatten``). A reader sees "Dr Ann Adams, share of savings",
"Indicator '30-day readmission %', score", "Total to pay", with the values formatted (money as
$1,234.56, percentages to two decimals, dates in the one style). Names come from the typed
read models of both versions (a physician or an opportunity may exist in only one of them); a
part of a path that names nothing known is still said in words ("Base usage, item 2"), never
shown as the path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from comanage.core.display import (
    EMPTY,
    FIELD_LABELS,
    format_date,
    format_month,
    format_percentage,
    words,
)
from comanage.core.money import format_money, round_places

from .read_models import FigureChange, RunRead

PAGE_LIMIT = 200  # a page lists this many changes, then says how many there are in all
_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DECIMAL = re.compile(r"-?\d+(?:\.\d+)?")
_CODE = re.compile(r"[a-z]+(?:_[a-z0-9]+)+")

# The engines' section names: the figure's own words say enough without them.
_SECTIONS = {"figures", "savings", "fixed_fee", "context", "results"}
_SECTION_WORDS = {"totals": "", "incentive": "incentive", "inputs": "input", "terms": "terms"}

# How a collection's item is named: "{prefix} '{name}'" (physicians by their name alone).
_COLLECTIONS = {
    "opportunities": "Opportunity",
    "indicators": "Indicator",
    "key_indicators": "Key indicator",
    "flags": "Finding",
    "rule_notes": "Rule applied",
}
_PHYSICIAN_COLLECTIONS = {"physicians", "participants"}

# Figure names a person would write, where the stored name makes a poor one.
_LABELS = {
    **{k: v[0].lower() + v[1:] for k, v in FIELD_LABELS.items()},
    "amount": "amount",
    "weight": "weight",
    "display_score": "score as shown",
    "earned_total": "earned",
    "tier_met": "tier met",
    "payout_pct": "payout",
    "amount_payable": "amount payable",
    "applied_volume_factor": "volume factor applied",
    "total_to_pay": "total to pay",
    "fmv_total_max": "FMV maximum",
    "fmv_headroom": "headroom under the FMV maximum",
    "npi": "NPI",
    "sha256": "SHA-256 checksum",
}
# Under a physician of the savings figures, ``amount`` is their share of the savings.
_PHYSICIAN_LABELS = {"amount": "share of savings", "weight": "weight in the split"}

_PERCENT_FIELDS = {"weight", "weight_used", "scored_weight", "payout_pct"}
_FRACTION_FIELDS = {"volume_factor", "federal_volume_factor", "applied_volume_factor"}
_NUMBER_FIELDS = {
    "score",
    "display_score",
    "baseline",
    "result",
    "quality_factor",
    "weighted_payout_sum",
    "payout_divisor",
    "required_hours",
    "approved_hours",
    "base_average_severity",
    "current_average_severity",
}


@dataclass(frozen=True)
class ChangeRow:
    """One changed figure as a reader sees it."""

    figure: str
    previous: str
    current: str


class _Names:
    """Who and what the stored keys name, from the versions being compared."""

    def __init__(self, reads: Iterable[RunRead]):
        self.physicians: dict[str, str] = {}
        self.items: dict[str, dict[str, str]] = {k: {} for k in _COLLECTIONS}
        reads = list(reads)
        for read in reads:
            self._from_read(read)
        for read in reads:  # the co-management physicians, after the savings ones
            for p in read.participants:
                self.physicians.setdefault(str(p.physician_id), p.name)

    def _from_read(self, read: RunRead) -> None:
        if read.savings is not None:
            for p in read.savings.physicians:
                self.physicians.setdefault(p.physician_id, p.name)
            for o in read.savings.opportunities:
                self.items["opportunities"].setdefault(o.key, o.name)
            for k in read.savings.key_indicators:
                self.items["key_indicators"].setdefault(k.key, k.name)
        if read.incentive is not None:
            for i in read.incentive.indicators:
                self.items["indicators"].setdefault(i.key, i.name)

    def known(self, key: str) -> str:
        """A key used as a name in the stored inputs (``scores.pex``): what it names."""
        for collection, found in self.items.items():
            if key in found:
                return f"{_COLLECTIONS[collection].lower()} '{found[key]}'"
        return words(key).lower()

    def item(self, collection: str, selector: str) -> str:
        if collection in _PHYSICIAN_COLLECTIONS:
            return self.physicians.get(selector) or f"physician {selector}"
        if collection == "lines":
            return f"Fixed fee for {format_month(selector)}"
        prefix = _COLLECTIONS.get(collection)
        if prefix is None:
            return f"{self.known(collection)}, {_ordinal(selector)}"
        name = self.items.get(collection, {}).get(selector)
        if name:
            return f"{prefix} '{name}'"
        if selector.isdigit():
            return f"{prefix} {int(selector) + 1}"
        return f"{prefix} '{words(selector)}'"


def _ordinal(selector: str) -> str:
    return f"item {int(selector) + 1}" if selector.isdigit() else words(selector)


def _tokens(path: str) -> list[tuple[str, bool]]:
    """``a.b[x].c`` -> [("a", False), ("b", False), ("x", True), ("c", False)]; a digit part
    after a collection (``physicians.3.share``) is an item too."""
    out: list[tuple[str, bool]] = []
    for selector, name in _TOKEN.findall(path):
        if name:
            out.append((name, name.isdigit() and bool(out)))
        else:
            out.append((selector, True))
    return out


def figure_words(path: str, names: _Names) -> str:
    """A stored figure path said in words (never the path itself)."""
    tokens = _tokens(str(path))
    parts: list[str] = []
    field = ""
    in_physician = False
    for index, (part, is_item) in enumerate(tokens):
        following_is_item = index + 1 < len(tokens) and tokens[index + 1][1]
        if is_item:
            collection = tokens[index - 1][0] if index else ""
            parts.append(names.item(collection, part))
            in_physician = collection in _PHYSICIAN_COLLECTIONS
            field = ""
            continue
        if following_is_item:
            continue  # the collection's name: its item says it
        if index + 1 < len(tokens):
            if part in _SECTIONS or (part == "incentive" and _has_item(tokens[index:])):
                continue
            section = _SECTION_WORDS.get(part) if part in _SECTION_WORDS else names.known(part)
            if section:
                parts.append(section)
            continue
        field = part
    if field:
        labels = {**_LABELS, **(_PHYSICIAN_LABELS if in_physician else {})}
        parts.append(labels.get(field) or _field_words(field))
    text = ", ".join(p for p in parts if p) or "A figure of the calculation"
    return text[0].upper() + text[1:]


def _has_item(tokens: list[tuple[str, bool]]) -> bool:
    return any(is_item for _, is_item in tokens)


def _field_words(field: str) -> str:
    label = words(field).lower()
    return f"{label[:-4]} (%)" if label.endswith(" pct") else label


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def figure_value(path: str, value: Any) -> str:
    """A stored value as a person reads it, by what the figure is."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if value == [] or value == {}:
        return "none"
    number = _decimal(value)
    if number is None:
        return _text_value(value)
    tokens = _tokens(str(path))
    field = tokens[-1][0] if tokens else ""
    if isinstance(value, int) or field.endswith(("_cases", "_days", "_months")):
        return f"{number:,}"
    if field == "weight" and any(t in _PHYSICIAN_COLLECTIONS for t, _ in tokens):
        return f"{round_places(number, 4):,}"  # a physician's fraction of the split
    return _number_value(field, number)


def _text_value(value: Any) -> str:
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return format_date(value)
    if isinstance(value, str) and _CODE.fullmatch(value):
        return words(value)
    return str(value)


def _number_value(field: str, number: Decimal) -> str:
    if field.endswith("_pct") or field in _PERCENT_FIELDS:
        return format_percentage(number)
    if field in _FRACTION_FIELDS:
        return format_percentage(number * 100)
    if field not in _NUMBER_FIELDS and number.as_tuple().exponent == -2:
        return format_money(number)  # stored money: always two decimals
    return f"{round_places(number, 2):,}"


def change_rows(
    changes: Iterable[FigureChange | Mapping[str, Any]],
    *,
    reads: Sequence[RunRead] = (),
) -> list[ChangeRow]:
    """The changes in words, naming things from the versions compared (``reads``)."""
    names = _Names(reads)
    rows = []
    for change in changes:
        if isinstance(change, Mapping):
            change = FigureChange.from_stored(change)
        rows.append(
            ChangeRow(
                figure=figure_words(change.path, names),
                previous=figure_value(change.path, change.old),
                current=figure_value(change.path, change.new),
            )
        )
    return rows


def run_change_rows(run: Any, *, limit: int | None = None) -> list[ChangeRow]:
    """A stored run's diff against its previous version, in words."""
    previous = run.previous
    reads = [run.read] + ([previous.read] if previous is not None else [])
    changes = run.read.changes if limit is None else run.read.changes[:limit]
    return change_rows(changes, reads=reads)


def scenario_change_rows(comparison: Any) -> list[ChangeRow]:
    """A what-if's changes against the official run, in words (``services.ScenarioComparison``)."""
    payload = comparison.payload
    reads = [RunRead.from_run(payload)]
    if comparison.official is not None:
        reads.append(comparison.official.read)
    return change_rows(comparison.diff[:PAGE_LIMIT], reads=reads)
