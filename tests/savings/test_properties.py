"""Multi-year properties of the savings engine over random programmes (spec section 4).

A programme here is a base year and two or three programme years run in order, as the service
runs them: year N's prior usage is year N-1's, and what earlier years paid is carried into the
distribution cap. Random participants join, leave and are terminated (some for cause) at
random dates; random terms (share, cap, quality gate, policies, threshold).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comanage.core.money import ZERO
from savings.engine import KeyIndicatorOutcome, Participant, SavingsResult, UsageColumns
from tests.savings.test_engine import Case, compute, opportunity, terms, usage
from tests.savings.test_engine_columns import columns

D = Decimal
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ITEMS = ("X1", "X2", "Y1")
PRICES = {"X1": D("12.50"), "X2": D("7.0001"), "Y1": D("300")}
OPPORTUNITIES = [opportunity("X", items=("X1", "X2")), opportunity("Y", items=("Y1",))]
NPIS = ("N1", "N2", "N3", "N4")
FIRST = 2025

money = st.integers(min_value=1, max_value=60_000).map(lambda c: f"{c // 100}.{c % 100:02d}")


def year_bounds(index: int) -> tuple[dt.date, dt.date]:
    return dt.date(FIRST + index, 1, 1), dt.date(FIRST + index, 12, 31)


@st.composite
def year_cases(draw, *, prefix: str, year: int) -> list[Case]:
    result = []
    for i in range(draw(st.integers(min_value=0, max_value=8))):
        day = dt.date(year, 1, 1) + dt.timedelta(days=draw(st.integers(0, 364)))
        items = draw(
            st.lists(
                st.tuples(st.sampled_from(ITEMS), st.sampled_from(["1", "2", "0.5"]), money),
                min_size=1,
                max_size=3,
                unique_by=lambda t: t[0],
            )
        )
        result.append(
            Case(
                case_id=f"{prefix}{i}",
                npi=draw(st.sampled_from(NPIS)),
                items=tuple(items),
                service_date=day.isoformat(),
                federal=draw(st.booleans()),
                opted_out=draw(st.integers(0, 9)) == 0,
                notice_date=f"{year}-01-01",
            )
        )
    return result


@st.composite
def participants(draw) -> list[Participant]:
    people = []
    day = st.integers(min_value=-200, max_value=3 * 365).map(
        lambda d: dt.date(FIRST, 1, 1) + dt.timedelta(days=d)
    )
    for npi in NPIS[: draw(st.integers(min_value=1, max_value=len(NPIS)))]:
        join = draw(day)
        leave = draw(st.none() | day.filter(lambda d, j=join: d >= j))
        terminated = draw(st.none() | day.filter(lambda d, j=join: d >= j))
        people.append(
            Participant(
                physician_id=npi,
                npi=npi,
                last_name=draw(st.sampled_from(["Adams", "Smith"])),
                first_name=draw(st.sampled_from(["Ann", "Bo"])),
                join_date=join,
                leave_date=leave,
                termination_date=terminated,
                for_cause=terminated is not None and draw(st.booleans()),
            )
        )
    return people


@st.composite
def programmes(draw) -> dict:
    years = draw(st.integers(min_value=2, max_value=3))
    return {
        "base": draw(year_cases(prefix="b", year=FIRST - 1)),
        "years": [draw(year_cases(prefix=f"y{n}-", year=FIRST + n)) for n in range(years)],
        "participants": draw(participants()),
        "terms": terms(
            physician_share_pct=D(draw(st.sampled_from(["50", "33.33", "25"]))),
            admin_fee_monthly=D(draw(st.sampled_from(["0.00", "1.00", "25.00"]))),
            distribution_cap=D(draw(st.sampled_from(["100.00", "1000.00", "100000.00"]))),
            quality_gate=draw(st.sampled_from(["all_or_nothing", "sliding"])),
            negative_opportunities=draw(st.sampled_from(["net", "floor_at_zero"])),
            leaver_policy=draw(st.sampled_from(["pro_rata", "forfeit"])),
            reprice_baseline=draw(st.booleans()),
            min_savings_threshold_pct=draw(st.none() | st.sampled_from([D("0.5"), D("5")])),
        ),
        "indicators_met": [draw(st.lists(st.booleans(), max_size=3)) for _ in range(years)],
        "seed": draw(st.integers(min_value=0, max_value=2**16)),
    }


def run_programme(
    programme: dict, *, shuffle: bool = False, split: bool = False
) -> list[SavingsResult]:
    """Every year in order; ``shuffle`` reorders each file's rows, ``split`` hands the base
    year over as two files (typed columns) instead of one frame."""
    rng = random.Random(programme["seed"])

    def frame(cases: list[Case]) -> pd.DataFrame:
        data = usage(cases)
        if shuffle and len(data):
            data = data.sample(frac=1, random_state=rng.randint(0, 2**16)).reset_index(drop=True)
        return data

    base = frame(programme["base"])
    base_input: pd.DataFrame | UsageColumns = base
    if split and len(base) > 1:
        cut = rng.randint(1, len(base) - 1)
        base_input = UsageColumns.concat([columns(base.iloc[:cut]), columns(base.iloc[cut:])])
    results = []
    already = ZERO
    prior = None
    for index, cases in enumerate(programme["years"]):
        start, end = year_bounds(index)
        current = frame(cases)
        indicators = [
            KeyIndicatorOutcome(key=f"k{i}", name=f"K{i}", met=met)
            for i, met in enumerate(programme["indicators_met"][index])
        ]
        result = compute(
            base=base_input,
            current=current,
            prior_usage=prior,
            prices=PRICES,
            opportunities=OPPORTUNITIES,
            participants=programme["participants"],
            savings_terms=programme["terms"],
            year_start=start,
            year_end=end,
            fee_months=None,
            already_distributed=already,
            key_indicators=indicators,
        )
        results.append(result)
        already += result.amount_paid
        prior = current
    return results


@given(programme=programmes())
@SETTINGS
def test_the_parts_always_add_up_to_each_years_amount(programme):
    for result in run_programme(programme):
        assert sum((p.amount for p in result.physicians), ZERO) == result.amount_paid
        assert result.physician_pool + result.hospital_share == result.net_savings
        assert result.amount_paid + result.hospital_keeps == result.net_savings
        assert (
            result.pool_after_quality_gate + result.withheld_by_quality_gate
            == result.physician_pool
        )
        assert (
            result.amount_paid + result.withheld_by_cap + result.withheld_no_entitled
            == result.pool_after_quality_gate
        )
        counted = [o.counted_savings for o in result.opportunities]
        if result.terms.negative_opportunities == "floor_at_zero":
            counted = [max(c, ZERO) for c in counted]
        assert sum(counted, ZERO) == result.gross_savings
        assert all(p.amount >= 0 for p in result.physicians)


@given(programme=programmes())
@SETTINGS
def test_cumulative_payments_never_exceed_the_cap(programme):
    paid = ZERO
    for result in run_programme(programme):
        paid += result.amount_paid
        assert result.cumulative_distributed == paid
        assert paid <= result.distribution_cap
        assert result.cap_headroom == result.distribution_cap - paid


@given(programme=programmes())
@SETTINGS
def test_a_physician_terminated_for_cause_receives_nothing_from_that_year_on(programme):
    for result in run_programme(programme):
        for person in programme["participants"]:
            if person.for_cause and person.termination_date <= result.year_end:
                row = result.physician(person.physician_id)
                assert row.amount == ZERO
                assert row.entitlement in ("forfeited_for_cause", "not_participating")


@given(programme=programmes())
@SETTINGS
def test_the_figures_do_not_depend_on_row_order_or_file_split(programme):
    plain = [r.to_dict() for r in run_programme(programme)]
    assert [r.to_dict() for r in run_programme(programme, shuffle=True)] == plain
    assert [r.to_dict() for r in run_programme(programme, shuffle=True, split=True)] == plain


@given(programme=programmes())
@SETTINGS
def test_the_same_inputs_give_the_same_calculation_hash(programme):
    first = [r.checksum() for r in run_programme(programme)]
    assert [r.checksum() for r in run_programme(programme)] == first
    assert [r.checksum() for r in run_programme(programme, shuffle=True, split=True)] == first
