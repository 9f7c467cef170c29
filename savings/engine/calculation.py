"""The calculation of spec section 4: per-opportunity figures, per-physician entitlement and
safeguards, and the split (:func:`savings_compute`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pandas as pd

from agreements.fees import fee_month_count
from comanage.core.money import ZERO, allocate_in_order, floor_money, round_rational, to_decimal

from .inputs import (
    RATE_PLACES,
    RULES_VERSION,
    BaselineSource,
    Entitlement,
    KeyIndicatorOutcome,
    LeaverPolicy,
    Opportunity,
    Participant,
    SavingsInputError,
    SavingsTerms,
)
from .prepared import PreparedUsage, _aggregate_year
from .results import (
    Flag,
    OpportunityResult,
    PhysicianResult,
    PhysicianSafeguards,
    RuleNote,
    SavingsResult,
    rule_note,
)
from .usage import UsageColumns, _YearAggregate

# --------------------------------------------------------------------------------------------
# Per-opportunity figures (spec 4 steps 1-6, baseline reset)


def _prices_as_fractions(prices: Mapping[str, Any]) -> dict[str, Fraction]:
    out = {}
    for item, price in prices.items():
        try:
            out[str(item)] = Fraction(to_decimal(price))
        except (TypeError, ValueError) as exc:
            raise SavingsInputError(f"price of item {item}: {exc}") from exc
    return out


def _per_case_cost(
    agg: _YearAggregate, opp: Opportunity, *, prices: Mapping[str, Fraction] | None
) -> Fraction | None:
    """The opportunity's cost per eligible case of a year, exact.

    ``prices`` given: utilisation per case (quantity of each item / eligible cases) priced at
    those prices (spec 4 step 2, ``reprice_baseline``). ``None``: the recorded acquisition cost
    per case. ``None`` is returned when the year has no eligible case (undefined, not zero).
    """
    cases = sum(agg.eligible.get(t, 0) for t in opp.case_types)
    if cases == 0:
        return None
    if prices is None:
        total = agg.cost_total(opp.case_types, opp.item_codes)
    else:
        total = agg.priced_total(opp.case_types, opp.item_codes, prices)
    return total / cases


def _rate(value: Fraction | None) -> Decimal | None:
    return None if value is None else round_rational(value, places=RATE_PLACES)


def _opportunity_figures(
    *,
    opp: Opportunity,
    terms: SavingsTerms,
    year: int,
    base: _YearAggregate,
    prior: _YearAggregate | None,
    current: _YearAggregate,
    prices: Mapping[str, Fraction],
    year_label: str,
    base_label: str,
    prior_label: str,
) -> tuple[OpportunityResult, Fraction, Fraction, list[RuleNote]]:
    """Spec 4 steps 1-6 for one opportunity. Returns the result, the exact expected cost (of an
    opportunity that can earn; else 0), the savings counted towards gross (before the
    ``negative_opportunities`` policy), and the rule notes of the edge cases that applied."""
    flags: list[Flag] = []
    notes: list[RuleNote] = []
    earns = opp.earns_in(year)
    if not earns:
        flags.append(
            Flag(
                code="not_effective",
                subject=opp.key,
                message="not identified at signing and not yet effective by amendment;"
                " shown for information, not counted",
            )
        )
    # Step 1: eligible cases of the programme year.
    eligible = sum(current.eligible.get(t, 0) for t in opp.case_types)
    federal_eligible = sum(current.federal_eligible.get(t, 0) for t in opp.case_types)

    # Step 2 and baseline reset: both candidates priced the same way.
    pricing = prices if terms.reprice_baseline else None
    original_pc = _per_case_cost(base, opp, prices=pricing)
    original_base_cases = sum(base.eligible.get(t, 0) for t in opp.case_types)
    prior_pc = _per_case_cost(prior, opp, prices=pricing) if prior is not None else None
    if prior is not None:
        base_cases = sum(prior.eligible.get(t, 0) for t in opp.case_types)
        base_federal = sum(prior.federal_eligible.get(t, 0) for t in opp.case_types)
    else:
        base_cases = original_base_cases
        base_federal = sum(base.federal_eligible.get(t, 0) for t in opp.case_types)
    source: BaselineSource
    if original_pc is None:
        baseline_pc, source = None, "none"
    elif prior_pc is not None and prior_pc < original_pc:
        baseline_pc, source = prior_pc, "prior_year"
    else:
        baseline_pc, source = original_pc, "original"

    # Step 3: expected and actual cost (actual at recorded acquisition cost).
    actual = current.cost_total(opp.case_types, opp.item_codes)
    actual_pc = actual / eligible if eligible else None
    expected = baseline_pc * eligible if baseline_pc is not None else Fraction(0)

    # Step 4: floor, effective actual per case = max(actual, min(floor, baseline)).
    floor = Fraction(to_decimal(opp.floor_per_case)) if opp.floor_per_case is not None else None
    effective_pc = actual_pc
    if actual_pc is not None and floor is not None and baseline_pc is not None:
        effective_pc = max(actual_pc, min(floor, baseline_pc))

    # Steps 5-6: raw savings, then the volume cap.
    raw = Fraction(0)
    volume_factor = Fraction(0)
    federal_factor: Fraction | None = None
    applied = Fraction(0)
    can_earn = True
    if eligible == 0:
        can_earn = False
        flags.append(
            Flag(
                code="no_eligible_cases",
                subject=opp.key,
                message="no eligible cases this year: savings are 0",
            )
        )
    if baseline_pc is None or base_cases == 0:
        # Edge case "no base-year case": never a zero baseline; the opportunity cannot earn.
        can_earn = False
        where = prior_label if prior is not None else base_label
        flags.append(
            Flag(
                code="no_base_cases",
                subject=opp.key,
                message=f"no eligible case in {where}: the opportunity cannot earn",
            )
        )
        notes.append(
            rule_note(
                "4.edge.no-base-case",
                opp.key,
                f"{opp.name}: no eligible case in {where}, cannot earn in {year_label}.",
            )
        )
    elif prior is not None and not terms.reprice_baseline:
        notes.append(
            rule_note(
                "4.edge.reset-without-repricing",
                opp.key,
                f"{opp.name}: baseline per case {_show(baseline_pc)} = the lower of the"
                f" original recorded cost per case ({_show(original_pc)}) and {prior_label}'s"
                f" actual cost per case ({_show(prior_pc)}), neither repriced.",
            )
        )
    if eligible and baseline_pc is not None and effective_pc is not None:
        raw = (baseline_pc - effective_pc) * eligible
        volume_factor = min(Fraction(1), Fraction(base_cases, eligible))
        if terms.volume_cap_scope == "federal_only":
            federal_share = Fraction(federal_eligible, eligible)
            if federal_eligible:
                federal_factor = min(Fraction(1), Fraction(base_federal, federal_eligible))
                if base_federal == 0:
                    flags.append(
                        Flag(
                            code="no_base_federal_cases",
                            subject=opp.key,
                            message="no base-year federal cases: the federal portion"
                            " of the savings earns nothing",
                        )
                    )
            else:
                federal_factor = Fraction(1)
            applied = federal_share * federal_factor + (1 - federal_share)
        else:
            applied = volume_factor
    if not can_earn:
        applied = Fraction(0)
    capped = round_rational(raw * applied)
    if volume_factor < 1 and can_earn:
        flags.append(
            Flag(
                code="volume_cap_applied",
                subject=opp.key,
                message=f"{eligible} eligible cases over {base_cases} base-year cases",
            )
        )
    counted = Fraction(capped) if earns else Fraction(0)
    pre_join = sum(current.before_joining.get(t, 0) for t in opp.case_types)
    post_term = sum(current.post_termination.get(t, 0) for t in opp.case_types)

    result = OpportunityResult(
        key=opp.key,
        name=opp.name,
        earns=earns,
        case_types=tuple(opp.case_types),
        item_codes=tuple(opp.item_codes),
        cases_of_type=sum(current.cases_of_type.get(t, 0) for t in opp.case_types),
        opted_out_cases=sum(current.opted_out.get(t, 0) for t in opp.case_types),
        before_joining_cases=pre_join,
        post_termination_cases=post_term,
        eligible_cases=eligible,
        federal_eligible_cases=federal_eligible,
        original_base_cases=original_base_cases,
        base_cases=base_cases,
        base_federal_cases=base_federal,
        original_baseline_per_case=_rate(original_pc),
        prior_year_per_case=_rate(prior_pc),
        baseline_source=source,
        baseline_per_case=_rate(baseline_pc),
        expected_cost=round_rational(expected),
        actual_cost=round_rational(actual),
        actual_per_case=_rate(actual_pc),
        floor_per_case=opp.floor_per_case,
        effective_actual_per_case=_rate(effective_pc),
        raw_savings=round_rational(raw),
        volume_factor=round_rational(volume_factor, places=RATE_PLACES),
        federal_volume_factor=_rate(federal_factor),
        applied_volume_factor=round_rational(applied, places=RATE_PLACES),
        capped_savings=capped,
        counted_savings=round_rational(counted),
        can_earn=can_earn,
        savings_target=opp.savings_target,
        flags=tuple(flags),
    )
    # Edge case "order of the split": the threshold's basis is the expected cost of the
    # opportunities that can earn that year.
    return result, (expected if earns and can_earn else Fraction(0)), counted, notes


def _show(value: Fraction | None) -> str:
    return "none" if value is None else f"{round_rational(value):,}"


def _check_prices(
    *,
    opportunities: Sequence[Opportunity],
    prices: Mapping[str, Fraction],
    years: Iterable[tuple[_YearAggregate, bool]],
) -> None:
    """A price missing for an item the year uses blocks the calculation: name every one."""
    missing: set[str] = set()
    for agg, needs_price in years:
        if not needs_price:
            continue
        for opp in opportunities:
            for case_type in opp.case_types:
                for item in opp.item_codes:
                    if (case_type, item) in agg.item_codes and item not in prices:
                        missing.add(item)
    if missing:
        raise SavingsInputError(
            "the price list has no price for item(s) used this year: " + ", ".join(sorted(missing))
        )


# --------------------------------------------------------------------------------------------
# Per physician: entitlement weight (spec 4 split step 5-6) and safeguards


def _participation(
    p: Participant, *, year_start: dt.date, year_end: dt.date, leaver_policy: LeaverPolicy
) -> tuple[Entitlement, int, int]:
    """(entitlement, days participated, days that count for the share)."""
    start = max(p.join_date, year_start)
    end = year_end
    if p.last_day is not None:
        end = min(end, p.last_day)
    days = max(0, (end - start).days + 1)
    if days == 0:
        return "not_participating", 0, 0
    if p.for_cause and p.termination_date is not None and p.termination_date <= year_end:
        return "forfeited_for_cause", days, 0
    if end < year_end:
        if leaver_policy == "forfeit":
            return "forfeited_leaver", days, 0
        return "pro_rata_leaver", days, days
    if start > year_start:
        return "pro_rata_joiner", days, days
    return "full", days, days


def _safeguards(
    *, npi: str, base: _YearAggregate, current: _YearAggregate, tolerance_pct: Decimal
) -> PhysicianSafeguards:
    b_cases, b_sev, b_fed, _ = base.by_physician.get(npi, (0, 0, 0, 0))
    c_cases, c_sev, c_fed, c_no_notice = current.by_physician.get(npi, (0, 0, 0, 0))
    b_avg = Fraction(b_sev, b_cases * 10**base.severity_digits) if b_cases else None
    c_avg = Fraction(c_sev, c_cases * 10**current.severity_digits) if c_cases else None
    change = None
    if b_avg and c_avg is not None:
        change = (c_avg - b_avg) / b_avg * 100
    severity_flag = change is not None and abs(change) > Fraction(to_decimal(tolerance_pct))
    return PhysicianSafeguards(
        base_cases=b_cases,
        current_cases=c_cases,
        base_average_severity=_rate(b_avg),
        current_average_severity=_rate(c_avg),
        severity_change_pct=None if change is None else round_rational(change),
        severity_flag=severity_flag,
        base_federal_cases=b_fed,
        current_federal_cases=c_fed,
        federal_rise_flag=c_fed > b_fed,
        cases_without_notice=c_no_notice,
        notice_flag=c_no_notice > 0,
    )


def _day(day: dt.date) -> str:
    """The one date style of every page and PDF ("Aug 15, 2025")."""
    return f"{day:%b} {day.day}, {day.year}"


_LEAVER_POLICY_WORDS = {"pro_rata": "pro rata to days participated", "forfeit": "forfeit"}


def _period_label(start: dt.date, end: dt.date) -> str:
    if (start.month, start.day, end.month, end.day) == (1, 1, 12, 31) and start.year == end.year:
        return str(start.year)
    return f"{_day(start)} - {_day(end)}"


def _entitlement_note(
    p: Participant,
    entitlement: Entitlement,
    days: int,
    year_days: int,
    policy: LeaverPolicy,
    year_start: dt.date,
) -> RuleNote | None:
    """Edge case "leavers and joiners" (and a forfeit for cause), in plain English."""
    subject = f"physician:{p.physician_id}"
    share = f"{days} of {year_days} days"
    if entitlement == "pro_rata_joiner":
        text = f"Dr {p.last_name}: joined {_day(p.join_date)}, {share}."
    elif entitlement == "pro_rata_leaver":
        joined = f"joined {_day(p.join_date)}, " if p.join_date > year_start else ""
        text = (
            f"Dr {p.last_name}: {joined}left {_day(p.last_day)}, {share}"  # type: ignore[arg-type]
            f" (leaver rule: {_LEAVER_POLICY_WORDS.get(policy, policy)})."
        )
    elif entitlement == "forfeited_leaver":
        text = (
            f"Dr {p.last_name}: left {_day(p.last_day)}; no share under"  # type: ignore[arg-type]
            f" the leaver rule '{_LEAVER_POLICY_WORDS.get(policy, policy)}' ({share} participated)."
        )
    elif entitlement == "forfeited_for_cause":
        text = (
            f"Dr {p.last_name}: terminated for cause on"
            f" {_day(p.termination_date)}; forfeits the year's share."  # type: ignore[arg-type]
        )
    else:
        return None
    return rule_note("4.edge.leavers-and-joiners", subject, text)


# --------------------------------------------------------------------------------------------
# The calculation


def savings_compute(
    *,
    terms: SavingsTerms,
    opportunities: Sequence[Opportunity],
    participants: Sequence[Participant],
    year_start: dt.date,
    year_end: dt.date,
    base_usage: pd.DataFrame | UsageColumns | PreparedUsage,
    current_usage: pd.DataFrame | UsageColumns | PreparedUsage,
    current_prices: Mapping[str, Any],
    prior_usage: pd.DataFrame | UsageColumns | PreparedUsage | None = None,
    fee_months: int | None = None,
    already_distributed: Decimal = ZERO,
    key_indicators: Sequence[KeyIndicatorOutcome] = (),
    year_label: str | None = None,
    base_year_label: str = "the base year",
    prior_year_label: str = "the prior programme year",
) -> SavingsResult:
    """Compute a programme year's shared savings and its split (spec section 4).

    ``base_usage`` is the original base year (before the agreement); ``prior_usage`` is year
    N-1's usage (``None`` in the first programme year) and drives the baseline reset and the
    volume cap's base-year cases. ``current_prices`` is year N's price file. ``fee_months``:
    months of administrator fee charged to the year (``None``: the spec's rule, see
    :func:`fee_month_count`; a projection passes the months elapsed). The labels name the
    periods in the rule notes. ``already_distributed``: paid to the
    practice in earlier years of the term. Raises :class:`SavingsInputError` on unusable input.
    """
    terms.validate()
    if year_end < year_start:
        raise SavingsInputError("the programme year ends before it starts")
    if fee_months is not None and fee_months < 0:
        raise SavingsInputError("fee_months must not be negative")
    already = to_decimal(already_distributed)
    if already < 0:
        raise SavingsInputError("already_distributed must not be negative")
    keys = [o.key for o in opportunities]
    if len(set(keys)) != len(keys):
        raise SavingsInputError("opportunity keys must be unique")
    ids = [p.physician_id for p in participants]
    if len(set(ids)) != len(ids):
        raise SavingsInputError("physician ids must be unique")

    case_types = frozenset(t for o in opportunities for t in o.case_types)
    windows: dict[str, tuple[int, int]] = {}
    for p in participants:
        if str(p.npi) in windows:
            raise SavingsInputError(f"physician NPI {p.npi} takes part twice")
        windows[str(p.npi)] = p.window()

    def aggregate(
        frame: pd.DataFrame | UsageColumns | PreparedUsage, label: str, *, window: bool
    ) -> _YearAggregate:
        return _aggregate_year(
            frame, label=label, case_types=case_types, window_by_npi=windows if window else None
        )

    # Edge case "whose cases count": the base year stays as identified at signing; year N-1 and
    # year N count a physician's cases only inside the participation window.
    base = aggregate(base_usage, "base year", window=False)
    prior = aggregate(prior_usage, "prior year", window=True) if prior_usage is not None else None
    current = aggregate(current_usage, "programme year", window=True)
    if (current.first_day is not None and current.first_day < year_start.toordinal()) or (
        current.last_day is not None and current.last_day > year_end.toordinal()
    ):
        raise SavingsInputError(
            f"programme-year usage has cases outside {year_start.isoformat()}"
            f"..{year_end.isoformat()}"
        )
    prices = _prices_as_fractions(current_prices)
    _check_prices(
        opportunities=opportunities,
        prices=prices,
        years=[(current, True), (base, terms.reprice_baseline)]
        + ([(prior, terms.reprice_baseline)] if prior is not None else []),
    )
    notes: list[RuleNote] = []
    year_label = year_label or _period_label(year_start, year_end)

    # Edge case "fee months": twelve fees for a year of twelve months whatever day it starts
    # on; a shorter year, one per started month.
    if fee_months is None:
        fee_months = fee_month_count(year_start, year_end)
        if year_start.day != 1 or fee_months != 12:
            notes.append(
                rule_note(
                    "4.edge.fee-months",
                    "agreement",
                    f"{year_label} runs {_day(year_start)} to {_day(year_end)}:"
                    f" {fee_months} monthly administrator fee(s)"
                    + (
                        ", one per started month (a short year)."
                        if fee_months < 12
                        else ", whatever day it starts on."
                    ),
                )
            )

    year = year_start.year
    opp_results: list[OpportunityResult] = []
    total_expected = Fraction(0)
    gross = Fraction(0)
    for opp in opportunities:
        result, expected, counted, opp_notes = _opportunity_figures(
            opp=opp,
            terms=terms,
            year=year,
            base=base,
            prior=prior,
            current=current,
            prices=prices,
            year_label=year_label,
            base_label=base_year_label,
            prior_label=prior_year_label,
        )
        opp_results.append(result)
        notes.extend(opp_notes)
        total_expected += expected
        # Spec 4 step 7: net the opportunities, or count only those that saved.
        gross += counted if terms.negative_opportunities == "net" else max(counted, Fraction(0))
    flags: list[Flag] = [f for r in opp_results for f in r.flags]

    # The split, steps 4 (threshold) and 1 (fees, net). Edge case "order of the split": the
    # threshold compares gross savings after the negative_opportunities policy with the
    # expected cost of the opportunities that can earn that year.
    threshold_amount: Decimal | None = None
    threshold_met = True
    if terms.min_savings_threshold_pct is not None:
        threshold = total_expected * Fraction(to_decimal(terms.min_savings_threshold_pct)) / 100
        threshold_amount = round_rational(threshold)
        threshold_met = gross >= threshold
        notes.append(
            rule_note(
                "4.edge.order-of-split",
                "agreement",
                f"Minimum-savings threshold: gross savings {round_rational(gross):,} (after"
                f" {terms.negative_opportunities}) {'meet' if threshold_met else 'fall below'}"
                f" {terms.min_savings_threshold_pct}% of the expected cost of the opportunities"
                f" that can earn ({round_rational(total_expected):,}), i.e. {threshold_amount:,}"
                + ("." if threshold_met else ": nothing is shared."),
            )
        )
        if not threshold_met:
            flags.append(
                Flag(
                    code="below_min_savings_threshold",
                    subject="agreement",
                    message=f"gross savings below {terms.min_savings_threshold_pct}%"
                    f" of expected cost ({threshold_amount}): nothing is shared",
                )
            )
    gross_d = round_rational(gross)
    fees = to_decimal(terms.admin_fee_monthly) * fee_months
    net = max(ZERO, gross_d - fees)
    shareable = net if threshold_met else ZERO

    # Edge case "order of the split": pool (rounded) -> quality gate -> cap -> per capita.
    # Step 2: the physician pool, half-up to cents (55,888.005 -> 55,888.01 in example A).
    pool = round_rational(
        Fraction(shareable) * Fraction(to_decimal(terms.physician_share_pct)) / 100
    )
    hospital_share = net - pool

    # Step 5: the quality gate (sliding: pool x share of key indicators met, half-up to cents).
    indicators = tuple(key_indicators)
    met = sum(1 for k in indicators if k.met)
    if not indicators:
        quality_factor = Fraction(1)
    elif terms.quality_gate == "all_or_nothing":
        quality_factor = Fraction(1 if met == len(indicators) else 0)
    else:
        quality_factor = Fraction(met, len(indicators))
    pool_after_gate = round_rational(Fraction(pool) * quality_factor)
    if quality_factor < 1:
        missed = ", ".join(k.key for k in indicators if not k.met)
        flags.append(
            Flag(
                code="quality_gate",
                subject="agreement",
                message=f"key indicators not met ({missed}): pool reduced to"
                f" {pool_after_gate} under {terms.quality_gate}",
            )
        )
        if terms.quality_gate == "sliding" and pool:
            notes.append(
                rule_note(
                    "4.edge.order-of-split",
                    "agreement",
                    f"Sliding quality gate: {met} of {len(indicators)} key indicators met;"
                    f" pool {pool:,} x {met}/{len(indicators)} = {pool_after_gate:,}"
                    " (rounded half-up to cents), before the distribution cap.",
                )
            )

    # Step 3: the distribution cap over the term; the excess stays with the hospital.
    cap = to_decimal(terms.distribution_cap)
    remaining = max(ZERO, cap - already)
    after_cap = min(pool_after_gate, remaining)
    if after_cap < pool_after_gate:
        flags.append(
            Flag(
                code="distribution_cap_binding",
                subject="agreement",
                message=f"pool {pool_after_gate} exceeds the cap headroom {remaining}",
            )
        )

    # Step 6: per capita, weighted by days participated; leftover cents by name order.
    physician_rows = []
    weights: list[int] = []
    year_days = (year_end - year_start).days + 1
    for p in participants:
        entitlement, days, counted_days = _participation(
            p, year_start=year_start, year_end=year_end, leaver_policy=terms.leaver_policy
        )
        physician_rows.append((p, entitlement, days))
        weights.append(counted_days)
        note = _entitlement_note(p, entitlement, days, year_days, terms.leaver_policy, year_start)
        if note is not None:
            notes.append(note)
        before, after = current.outside_by_physician.get(str(p.npi), (0, 0))
        if before or after:
            parts = []
            if before:
                parts.append(f"{before} case(s) before joining on {_day(p.join_date)}")
            if after and p.last_day is not None:
                how = "termination" if p.last_day == p.termination_date else "leaving"
                parts.append(f"{after} case(s) after {how} on {_day(p.last_day)}")
            notes.append(
                rule_note(
                    "4.edge.whose-cases",
                    f"physician:{p.physician_id}",
                    f"Dr {p.last_name}: {' and '.join(parts)} not eligible in {year_label}.",
                )
            )
    payable = after_cap
    withheld_no_entitled = ZERO
    if after_cap > 0 and sum(weights) == 0:
        # Edge case "nobody entitled": nothing is paid, the hospital keeps the pool, the cap is
        # not consumed, and a blocking compliance flag says why.
        why = (
            "all participants were terminated for cause or forfeited their share"
            if participants
            else "the programme has no participants"
        )
        flags.append(
            Flag(
                code="no_entitled_physicians",
                subject="agreement",
                message=f"no physician is entitled to a share ({why}): nothing is paid,"
                f" the hospital keeps {after_cap}, the distribution cap is not consumed",
                blocking=True,
            )
        )
        notes.append(
            rule_note(
                "4.edge.nobody-entitled",
                "agreement",
                f"No physician entitled ({why}): the pool of {after_cap:,} stays with the"
                " hospital and the distribution cap is not consumed.",
            )
        )
        withheld_no_entitled = after_cap
        payable = ZERO
    # Edge case "leftover cents": last name, first name, then NPI (never a database id).
    order = sorted(
        range(len(participants)),
        key=lambda i: (
            participants[i].last_name,
            participants[i].first_name,
            str(participants[i].npi),
        ),
    )
    # Only entitled physicians take part: a zero weight must not receive a leftover cent.
    entitled = [i for i in order if weights[i] > 0]
    position = {index: pos for pos, index in enumerate(sorted(entitled))}
    shares = allocate_in_order(
        payable, [weights[i] for i in sorted(entitled)], [position[i] for i in entitled]
    )
    amounts = [ZERO] * len(participants)
    for index, share in zip(sorted(entitled), shares, strict=True):
        amounts[index] = share
    total_weight = sum(weights)
    cent_takers = [
        i for i in entitled if amounts[i] != floor_money(payable * weights[i] / total_weight)
    ]
    if cent_takers:
        names = ", ".join(
            f"Dr {participants[i].last_name} (NPI {participants[i].npi})" for i in cent_takers
        )
        notes.append(
            rule_note(
                "4.edge.leftover-cents",
                "physicians",
                f"{len(cent_takers)} leftover cent(s) went one each to {names}, in order of last"
                " name, first name, then NPI.",
            )
        )
    physicians = []
    for (p, entitlement, days), weight, amount in zip(
        physician_rows, weights, amounts, strict=True
    ):
        guard = _safeguards(
            npi=str(p.npi), base=base, current=current, tolerance_pct=terms.severity_tolerance_pct
        )
        physicians.append(
            PhysicianResult(
                physician_id=p.physician_id,
                npi=str(p.npi),
                last_name=p.last_name,
                first_name=p.first_name,
                entitlement=entitlement,
                participation_days=days,
                year_days=year_days,
                weight=round_rational(Fraction(weight, year_days), places=RATE_PLACES),
                amount=amount,
                safeguards=guard,
            )
        )
        subject = f"physician:{p.physician_id}"
        if guard.severity_flag:
            flags.append(
                Flag(
                    code="severity_change",
                    subject=subject,
                    message=f"average case weight {guard.base_average_severity} ->"
                    f" {guard.current_average_severity}"
                    f" ({guard.severity_change_pct}%), beyond"
                    f" ±{terms.severity_tolerance_pct}%",
                )
            )
        if guard.federal_rise_flag:
            flags.append(
                Flag(
                    code="federal_case_rise",
                    subject=subject,
                    message=f"federal-payer cases {guard.base_federal_cases} ->"
                    f" {guard.current_federal_cases}",
                )
            )
        if guard.notice_flag:
            flags.append(
                Flag(
                    code="missing_patient_notice",
                    subject=subject,
                    message=f"{guard.cases_without_notice} case(s) without a patient notice record",
                )
            )
    known = {str(p.npi) for p in participants}
    strangers = sorted(n for n in current.by_physician if n not in known)
    if strangers:
        flags.append(
            Flag(
                code="cases_of_non_participants",
                subject="agreement",
                message="eligible cases of physicians not in the programme: "
                + ", ".join(strangers),
            )
        )

    return SavingsResult(
        rules_version=RULES_VERSION,
        year_start=year_start,
        year_end=year_end,
        terms=terms,
        first_programme_year=prior is None,
        opportunities=tuple(opp_results),
        total_expected_cost=round_rational(total_expected),
        gross_savings=gross_d,
        min_savings_threshold_amount=threshold_amount,
        min_savings_threshold_met=threshold_met,
        fee_months=fee_months,
        admin_fees=fees,
        net_savings=net,
        physician_pool=pool,
        hospital_share=hospital_share,
        key_indicators=indicators,
        key_indicators_met=met,
        quality_factor=round_rational(quality_factor, places=RATE_PLACES),
        pool_after_quality_gate=pool_after_gate,
        withheld_by_quality_gate=pool - pool_after_gate,
        distribution_cap=cap,
        already_distributed=already,
        cap_remaining_before=remaining,
        amount_paid=payable,
        withheld_by_cap=pool_after_gate - after_cap,
        withheld_no_entitled=withheld_no_entitled,
        cumulative_distributed=already + payable,
        cap_headroom=max(ZERO, cap - already - payable),
        hospital_keeps=net - payable,
        physicians=tuple(physicians),
        cases_without_notice=sum(v[3] for v in current.by_physician.values()),
        flags=tuple(flags),
        rule_notes=tuple(notes),
        fees_not_covered=max(ZERO, fees - gross_d),
    )


def distribution_cap_from_opportunities(*, opportunities: Sequence[Opportunity]) -> Decimal:
    """The cap of spec 4 split step 3: total savings identified at signing."""
    return sum((o.savings_target for o in opportunities if o.identified_at_signing), ZERO)
