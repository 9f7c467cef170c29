"""Pure assembly of a calculation run's payload: canonical JSON, the calculation hash, the
figure-by-figure diff and the per-physician distribution (spec sections 2, 4 and 5).

No ORM here: the service gathers the frozen terms and the engines' results, calls
``payload_assemble`` and stores what it returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from comanage.core.money import (
    ZERO,
    allocate_in_order,
    allocate_largest_remainder,
    round_places,
    to_decimal,
)
from comanage.core.serialise import canonical_json, jsonable  # noqa: F401 - re-exported

from .read_models import FixedFeeLine, FMVRead, RunTotals

CO_MANAGEMENT, SHARED_SAVINGS = "co_management", "shared_savings"


def calculation_hash(*, inputs: Any, rules_version: str, results: Any) -> str:
    """SHA-256 of the canonical JSON of inputs + rules version + results."""
    body = canonical_json({"inputs": inputs, "rules_version": rules_version, "results": results})
    return hashlib.sha256(body.encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Diff


def _item_label(item: Any, index: int) -> str:
    if isinstance(item, Mapping):
        for key in ("key", "physician_id", "month", "code", "name"):
            if key in item and isinstance(item[key], str | int):
                return str(item[key])
    return str(index)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": [ {"key": "x", "v": 1} ]}}`` → ``{"a.b[x].v": 1}``; leaves only."""
    out: dict[str, Any] = {}
    if isinstance(value, Mapping):
        if not value and prefix:
            out[prefix] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list | tuple):
        if not value and prefix:
            out[prefix] = []
        labels = [_item_label(v, i) for i, v in enumerate(value)]
        unique = len(set(labels)) == len(labels)
        for index, item in enumerate(value):
            label = labels[index] if unique else str(index)
            out.update(flatten(item, f"{prefix}[{label}]"))
    else:
        out[prefix] = value
    return out


def figures_diff(old: Any, new: Any) -> list[dict[str, Any]]:
    """Every leaf that differs: path, old, new (None where absent), sorted by path."""
    a, b = flatten(jsonable(old)), flatten(jsonable(new))
    return [
        {"path": path, "old": a.get(path), "new": b.get(path)}
        for path in sorted(set(a) | set(b))
        if a.get(path) != b.get(path)
    ]


# --------------------------------------------------------------------------------------------
# Payload


@dataclass(frozen=True)
class ParticipantShare:
    """A physician taking part in a co-management year (for the distribution of the fees)."""

    physician_id: int
    last_name: str
    first_name: str
    participation_days: int
    year_days: int
    ownership_pct: Decimal | None = None
    npi: str = ""


@dataclass(frozen=True)
class DistributionLine:
    physician_id: int
    component: str
    entitlement: str
    weight: Decimal
    amount: Decimal
    note: str = ""


@dataclass
class Payload:
    kind: str
    rules_version: str
    inputs: dict[str, Any]
    figures: dict[str, Any]
    flags: list[dict[str, Any]]
    results: dict[str, Any]
    distributions: list[DistributionLine] = field(default_factory=list)

    @property
    def hashed_results(self) -> dict[str, Any]:
        return {
            "figures": self.figures,
            "flags": self.flags,
            "totals": self.results,
            "distributions": [jsonable(d) for d in self.distributions],
        }

    @property
    def calculation_hash(self) -> str:
        return calculation_hash(
            inputs=self.inputs, rules_version=self.rules_version, results=self.hashed_results
        )


def _fixed_fee_lines(schedule: Any) -> list[dict[str, Any]]:
    lines = getattr(schedule, "lines", schedule) or []
    return [jsonable(line) for line in lines]


def _fixed_fee_flags(lines: Sequence[FixedFeeLine]) -> list[dict[str, Any]]:
    """A flag for each month whose fixed fee is held (hours short of the duties)."""
    return [
        {
            "source": "fixed_fee",
            "code": "month_held",
            "subject": line.month.isoformat(),
            "blocking": False,
            "message": f"Fixed fee for {line.month.isoformat()} held: "
            f"{line.note or 'hours short'}.",
        }
        for line in lines
        if line.status == "held"
    ]


def _co_management_distribution(
    *, total: Decimal, component: str, participants: Sequence[ParticipantShare], method: str
) -> list[DistributionLine]:
    """Split a co-management amount among the physicians (spec 2: per capita or by ownership).

    Per capita follows the spec-4 rule: equal portions weighted by the fraction of the year
    participated, floored, leftover cents one each in (last name, first name, NPI) order (spec 4
    edge case "leftover cents": never a database id). By
    ownership uses the ownership percentages with the largest-remainder rule.
    """
    if not participants:
        return []
    order_key = sorted(
        range(len(participants)),
        key=lambda i: (participants[i].last_name, participants[i].first_name, participants[i].npi),
    )
    if method == "by_ownership":
        weights = [to_decimal(p.ownership_pct or ZERO) for p in participants]
        amounts = (
            allocate_largest_remainder(total, weights)
            if sum(weights)
            else [ZERO for _ in participants]
        )
        entitlement = "by_ownership"
    else:
        weights = [
            Decimal(p.participation_days) / Decimal(p.year_days) if p.year_days else Decimal(0)
            for p in participants
        ]
        weights = [round_places(w, 10) for w in weights]
        amounts = allocate_in_order(total, weights, order_key)
        entitlement = "per_capita"
    return [
        DistributionLine(
            physician_id=p.physician_id,
            component=component,
            entitlement=entitlement,
            weight=w,
            amount=a,
            note=f"{p.participation_days} of {p.year_days} days",
        )
        for p, w, a in zip(participants, weights, amounts, strict=True)
    ]


def _co_management_parts(
    *,
    inputs: dict[str, Any],
    figures: dict[str, Any],
    flags: list[dict[str, Any]],
    results: dict[str, Any],
    incentive: Any,
    incentive_inputs: Any,
    fixed_fee_schedule: Any,
    fixed_fee_inputs: Any,
    participants: Sequence[ParticipantShare],
    distribution_method: str,
) -> list[DistributionLine]:
    """A co-management run's inputs, figures, flags and totals (filled in), and its
    distribution of the fixed fee and the incentive among the physicians."""
    distributions: list[DistributionLine] = []
    fee_lines = _fixed_fee_lines(fixed_fee_schedule)
    inputs["fixed_fee"] = jsonable(fixed_fee_inputs or {})
    figures["fixed_fee"] = {"lines": fee_lines}
    # Read back as the run will store them: the totals are sums of the stored figures.
    typed_lines = [FixedFeeLine.from_stored(line) for line in fee_lines]
    fixed_total = sum((line.instalment for line in typed_lines), ZERO)
    fixed_payable = sum((line.amount_payable for line in typed_lines), ZERO)
    flags += _fixed_fee_flags(typed_lines)
    earned = ZERO
    if incentive is not None:
        inputs["incentive"] = jsonable(incentive_inputs or {})
        figures["incentive"] = jsonable(incentive)
        earned = to_decimal(incentive.earned_total)
        results["incentive_pool"] = str(incentive.pool)
        results["incentive_earned"] = str(earned)
        for outcome in incentive.indicators:
            if outcome.policy_applied:
                flags.append(
                    {
                        "source": "incentive",
                        "code": "small_denominator",
                        "subject": outcome.name,
                        "blocking": False,
                        "message": f"{outcome.name}: {outcome.note}.",
                    }
                )
    results["fixed_fee_annual"] = str(fixed_total)
    results["fixed_fee_payable"] = str(fixed_payable)
    results["fixed_fee_held"] = str(fixed_total - fixed_payable)
    total = fixed_payable + earned
    results["total_compensation"] = str(total)
    results["total_to_pay"] = str(total)
    inputs["participants"] = jsonable(list(participants))
    inputs["distribution_method"] = distribution_method
    distributions += _co_management_distribution(
        total=fixed_payable,
        component="fixed_fee",
        participants=participants,
        method=distribution_method,
    )
    distributions += _co_management_distribution(
        total=earned,
        component="incentive",
        participants=participants,
        method=distribution_method,
    )
    return distributions


def _savings_parts(
    *,
    inputs: dict[str, Any],
    figures: dict[str, Any],
    flags: list[dict[str, Any]],
    results: dict[str, Any],
    savings: Any,
    savings_inputs: Any,
    physician_ids_by_engine_id: Mapping[str, int] | None,
) -> list[DistributionLine]:
    """A shared-savings run's inputs, figures, flags and totals (filled in), and each
    physician's distribution of the pool."""
    distributions: list[DistributionLine] = []
    if savings is None:
        raise ValueError("a shared-savings run needs the savings result")
    inputs["savings"] = jsonable(savings_inputs or {})
    figures["savings"] = jsonable(savings)
    for name in (
        "gross_savings",
        "admin_fees",
        "net_savings",
        "physician_pool",
        "hospital_share",
        "pool_after_quality_gate",
        "withheld_by_quality_gate",
        "distribution_cap",
        "already_distributed",
        "amount_paid",
        "withheld_by_cap",
        "cumulative_distributed",
        "cap_headroom",
        "hospital_keeps",
        "total_expected_cost",
    ):
        results[name] = str(getattr(savings, name))
    results["total_to_pay"] = str(savings.amount_paid)
    for flag in savings.flags:
        flags.append(
            {
                "source": "savings",
                "code": flag.code,
                "subject": flag.subject,
                "message": flag.message,
                "blocking": False,
            }
        )
    mapping = physician_ids_by_engine_id or {}
    for physician in savings.physicians:
        physician_id = mapping.get(physician.physician_id, mapping.get(physician.npi))
        if physician_id is None:
            physician_id = int(physician.physician_id)
        distributions.append(
            DistributionLine(
                physician_id=physician_id,
                component="savings",
                entitlement=physician.entitlement,
                weight=to_decimal(physician.weight),
                amount=to_decimal(physician.amount),
                note=f"{physician.participation_days} of {physician.year_days} days"
                if physician.entitlement != "forfeited_for_cause"
                else "forfeited (for cause)",
            )
        )
    return distributions


def payload_assemble(
    *,
    kind: str,
    rules_version: str,
    context: Mapping[str, Any],
    incentive: Any = None,
    incentive_inputs: Any = None,
    fixed_fee_schedule: Any = None,
    fixed_fee_inputs: Any = None,
    participants: Sequence[ParticipantShare] = (),
    distribution_method: str = "per_capita",
    savings: Any = None,
    savings_inputs: Any = None,
    physician_ids_by_engine_id: Mapping[str, int] | None = None,
    fmv: Mapping[str, Any] | None = None,
) -> Payload:
    """Build the run's payload from the engines' results (no ORM, deterministic).

    ``context`` names the agreement, year and frozen terms (part of the inputs, so a change of
    terms changes the hash). ``incentive`` is an ``IncentiveResult``, ``savings`` a
    ``SavingsResult``, ``fixed_fee_schedule`` a list of ``agreements.fees.InstalmentLine``.
    """
    inputs: dict[str, Any] = {"context": jsonable(context)}
    figures: dict[str, Any] = {}
    flags: list[dict[str, Any]] = []
    results: dict[str, Any] = {"kind": kind}

    if kind == CO_MANAGEMENT:
        distributions = _co_management_parts(
            inputs=inputs,
            figures=figures,
            flags=flags,
            results=results,
            incentive=incentive,
            incentive_inputs=incentive_inputs,
            fixed_fee_schedule=fixed_fee_schedule,
            fixed_fee_inputs=fixed_fee_inputs,
            participants=participants,
            distribution_method=distribution_method,
        )
    elif kind == SHARED_SAVINGS:
        distributions = _savings_parts(
            inputs=inputs,
            figures=figures,
            flags=flags,
            results=results,
            savings=savings,
            savings_inputs=savings_inputs,
            physician_ids_by_engine_id=physician_ids_by_engine_id,
        )
    else:
        raise ValueError(f"unknown agreement kind {kind!r}")

    if fmv:
        inputs["fmv"] = jsonable(fmv)
        if kind == CO_MANAGEMENT:
            maximum = FMVRead.from_stored(inputs["fmv"]).total_max_annual
            total = RunTotals.from_stored(results).total_compensation or ZERO
            results["fmv_total_max"] = str(maximum)
            results["fmv_headroom"] = str(maximum - total)
    return Payload(
        kind=kind,
        rules_version=rules_version,
        inputs=inputs,
        figures=figures,
        flags=flags,
        results=results,
        distributions=distributions,
    )
