"""Properties of the shared-savings engine that must hold for any data (spec section 4)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from savings.engine import SavingsResult
from tests.savings.test_engine import (
    YEAR_START,
    Case,
    compute,
    opportunity,
    physician,
    terms,
    usage,
)

D = Decimal
PROPERTY_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ITEMS = ("X1", "X2", "Y1")
OPPORTUNITIES = [opportunity("X", items=("X1", "X2")), opportunity("Y", items=("Y1",))]

money_text = st.integers(min_value=1, max_value=200_000).map(lambda c: f"{c // 100}.{c % 100:02d}")
quantity_text = st.sampled_from(["0", "1", "2", "3", "0.5", "1.25"])
day_of_2025 = st.integers(min_value=0, max_value=364).map(
    lambda d: (YEAR_START + dt.timedelta(days=d)).isoformat()
)


@st.composite
def case_lists(draw, *, prefix: str, service_date: st.SearchStrategy[str] | None = None):
    count = draw(st.integers(min_value=0, max_value=12))
    result = []
    for i in range(count):
        items = draw(
            st.lists(st.tuples(st.sampled_from(ITEMS), quantity_text, money_text), max_size=3)
        )
        result.append(
            Case(
                case_id=f"{prefix}{i}",
                npi=draw(st.sampled_from(["N1", "N2", "N3"])),
                items=tuple(items) or (("X1", "1", "10.00"),),
                service_date=draw(service_date) if service_date is not None else "2024-06-01",
                federal=draw(st.booleans()),
                opted_out=draw(st.booleans()) and draw(st.booleans()),
                severity=draw(st.sampled_from(["1.5", "2.0", "2.25"])),
                notice_date=draw(st.sampled_from(["", "2025-01-01"])),
            )
        )
    return result


ALL_PRICES = {"X1": D("12.50"), "X2": D("7.0001"), "Y1": D("300")}


def _run(base_cases, current_cases, **kwargs) -> SavingsResult:
    return compute(
        base=usage(base_cases),
        current=usage(current_cases),
        prices=kwargs.pop("prices", ALL_PRICES),
        opportunities=kwargs.pop("opportunities", OPPORTUNITIES),
        participants=kwargs.pop(
            "participants", [physician("N1"), physician("N2"), physician("N3")]
        ),
        **kwargs,
    )


@st.composite
def participants(draw):
    people = []
    for n in range(draw(st.integers(min_value=1, max_value=6))):
        join = YEAR_START + dt.timedelta(days=draw(st.integers(min_value=-400, max_value=300)))
        leave = draw(st.none() | st.integers(min_value=0, max_value=420))
        terminated = draw(st.none() | st.integers(min_value=0, max_value=420))
        people.append(
            physician(
                f"N{n}",
                last_name=draw(st.sampled_from(["Adams", "Baker", "Clark"])),
                first_name=draw(st.sampled_from(["A", "B"])),
                join_date=join,
                leave_date=None if leave is None else join + dt.timedelta(days=leave),
                termination_date=None
                if terminated is None
                else join + dt.timedelta(days=terminated),
                for_cause=draw(st.booleans()),
            )
        )
    return people


@PROPERTY_SETTINGS
@given(
    people=participants(),
    saved_cents=st.integers(min_value=0, max_value=10_000_000),
    policy=st.sampled_from(["pro_rata", "forfeit"]),
)
def test_per_capita_parts_always_add_up_to_the_amount_paid(people, saved_cents, policy):
    base = [
        Case(f"b{i}", npi="N0", items=(("X1", "1", "1000.00"),), service_date="2024-06-01")
        for i in range(4)
    ]
    per_case = D(100000 - saved_cents // 4) / 100
    current = [Case(f"c{i}", npi="N0", items=(("X1", "1", str(per_case)),)) for i in range(4)]
    result = _run(
        base,
        current,
        prices={"X1": D("1000.00")},
        opportunities=[opportunity()],
        participants=people,
        savings_terms=terms(leaver_policy=policy),
    )
    amounts = [p.amount for p in result.physicians]
    assert sum(amounts, D(0)) == result.amount_paid
    assert all(a >= 0 and a == a.quantize(D("0.01")) for a in amounts)
    for p in result.physicians:
        if p.entitlement in ("forfeited_for_cause", "forfeited_leaver", "not_participating"):
            assert p.amount == 0


@PROPERTY_SETTINGS
@given(
    cap_cents=st.integers(min_value=0, max_value=50_000),
    yearly_costs=st.lists(st.integers(min_value=0, max_value=200), min_size=1, max_size=4),
)
def test_cumulative_distributions_never_exceed_the_cap(cap_cents, yearly_costs):
    cap = D(cap_cents) / 100
    base = [Case(f"b{i}", items=(("X1", "1", "100"),), service_date="2024-06-01") for i in range(5)]
    already = D("0.00")
    for year_cost in yearly_costs:
        current = [Case(f"c{i}", items=(("X1", "1", str(year_cost)),)) for i in range(5)]
        result = _run(
            base,
            current,
            prices={"X1": D("100")},
            opportunities=[opportunity()],
            savings_terms=terms(distribution_cap=cap),
            already_distributed=already,
        )
        assert D(0) <= result.amount_paid <= result.pool_after_quality_gate
        assert result.amount_paid + result.withheld_by_cap == result.pool_after_quality_gate
        already = result.cumulative_distributed
        assert already <= cap
        assert result.cap_headroom == cap - already


@PROPERTY_SETTINGS
@given(
    base_cases=case_lists(prefix="b"),
    current_cases=case_lists(prefix="c", service_date=day_of_2025),
    scope=st.sampled_from(["all_payors", "federal_only"]),
)
def test_the_volume_factor_never_exceeds_one(base_cases, current_cases, scope):
    result = _run(base_cases, current_cases, savings_terms=terms(volume_cap_scope=scope))
    for opp in result.opportunities:
        assert D(0) <= opp.volume_factor <= 1
        assert D(0) <= opp.applied_volume_factor <= 1
        if opp.federal_volume_factor is not None:
            assert D(0) <= opp.federal_volume_factor <= 1
        if opp.raw_savings >= 0:
            assert opp.capped_savings <= opp.raw_savings + D("0.01")


@PROPERTY_SETTINGS
@given(
    base_cases=case_lists(prefix="b"),
    current_cases=case_lists(prefix="c", service_date=day_of_2025),
    seed=st.randoms(use_true_random=False),
    scope=st.sampled_from(["all_payors", "federal_only"]),
)
def test_shuffling_rows_never_changes_any_figure(base_cases, current_cases, seed, scope):
    base = usage(base_cases)
    current = usage(current_cases)
    agreement = terms(volume_cap_scope=scope, admin_fee_monthly=D("0.10"))
    people = [
        physician("N1"),
        physician("N2", termination_date=dt.date(2025, 6, 30)),
        physician("N3", join_date=dt.date(2025, 3, 1)),
    ]

    def run(b, c):
        return compute(
            base=b,
            current=c,
            prices=ALL_PRICES,
            opportunities=OPPORTUNITIES,
            participants=people,
            savings_terms=agreement,
        ).to_dict()

    def shuffled(frame):
        order = list(range(len(frame)))
        seed.shuffle(order)
        return frame.iloc[order].reset_index(drop=True)

    assert run(shuffled(base), shuffled(current)) == run(base, current)


@PROPERTY_SETTINGS
@given(
    uses=st.lists(
        st.lists(st.tuples(st.sampled_from(ITEMS), quantity_text), min_size=1, max_size=3),
        min_size=1,
        max_size=8,
    ),
    old_prices=st.fixed_dictionaries(dict.fromkeys(ITEMS, money_text)),
    new_prices=st.fixed_dictionaries(dict.fromkeys(ITEMS, money_text)),
    scope=st.sampled_from(["all_payors", "federal_only"]),
)
def test_with_repricing_a_price_change_alone_never_creates_savings(
    uses, old_prices, new_prices, scope
):
    def year(prefix: str, date: str, prices: dict[str, str]) -> list[Case]:
        return [
            Case(
                f"{prefix}{n}",
                items=tuple((item, qty, prices[item]) for item, qty in use),
                service_date=date,
                federal=n % 2 == 0,
            )
            for n, use in enumerate(uses)
        ]

    result = _run(
        year("b", "2024-05-01", old_prices),
        year("c", "2025-05-01", new_prices),
        prices={item: D(price) for item, price in new_prices.items()},
        savings_terms=terms(volume_cap_scope=scope),
    )
    for opp in result.opportunities:
        assert opp.raw_savings == 0
        assert opp.capped_savings == 0
    assert result.gross_savings == 0
    assert result.amount_paid == 0
