"""Example A of the spec through the real import service and ``savings_for_year``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from savings import selectors, services
from savings.engine import SavingsInputError
from tests.savings.helpers import example_a_agreement, import_example_a, year

D = Decimal
pytestmark = pytest.mark.django_db


def test_example_a_comes_out_to_the_cent_through_import_and_service(world):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        computation = services.savings_for_year(programme_year=year(agreement, 1))
    result = computation.result
    assert [o.capped_savings for o in result.opportunities] == [
        D("91856.01"),
        D("60000.00"),
        D("-4080.00"),
    ]
    assert [o.eligible_cases for o in result.opportunities] == [455, 455, 455]
    assert result.gross_savings == D("147776.01")
    assert result.admin_fees == D("36000.00")
    assert result.net_savings == D("111776.01")
    assert result.physician_pool == D("55888.01")
    assert result.hospital_share == D("55888.00")
    amounts = {p.last_name: p.amount for p in result.physicians}
    assert amounts == {
        "Adams": D("18629.34"),
        "Baker": D("18629.34"),
        "Clark": D("18629.33"),
        "Diaz": D("0.00"),
    }
    inputs = computation.inputs
    assert inputs["usage"]["sha256"] and inputs["price_file"]["sha256"]
    assert inputs["base_usage"][0]["file"] == "usage_2024.csv"


def test_the_same_inputs_give_the_same_figures_and_one_stored_calculation(world):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        first = services.savings_calculation_run(
            programme_year=year(agreement, 1), user=world.users["administrator"]
        )
        again = services.savings_calculation_run(
            programme_year=year(agreement, 1), user=world.users["administrator"]
        )
        assert first.pk == again.pk
        recomputed = services.savings_for_year(programme_year=year(agreement, 1))
        assert recomputed.result.checksum() == first.result_checksum
        assert recomputed.inputs_checksum == first.inputs_checksum
        assert selectors.calculations_of(agreement=agreement).count() == 1


def test_a_missing_price_file_blocks_the_year_with_a_clear_reason(world):
    agreement = example_a_agreement(world)
    admin = world.users["administrator"]
    from tests.savings.helpers import EXAMPLE_A

    with world.scope():
        services.data_import_from_path(
            agreement=agreement,
            kind="usage",
            period="base",
            base_year=2024,
            path=EXAMPLE_A / "usage_2024.csv",
            user=admin,
        )
        services.data_import_from_path(
            agreement=agreement,
            kind="usage",
            period="programme",
            programme_year=year(agreement, 1),
            path=EXAMPLE_A / "usage_2025.csv",
            user=admin,
        )
        with pytest.raises(SavingsInputError, match="price file is missing"):
            services.savings_for_year(programme_year=year(agreement, 1))


def test_the_stored_rows_give_the_same_figures_as_typed_columns_and_as_text(world):
    """The service's fast path (typed columns from the database) and the text path (the same
    rows as strings) agree on every figure; on PostgreSQL both come out through COPY."""
    import datetime as dt

    from savings import engine
    from savings.models import ImportKind

    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        computation = services.savings_for_year(programme_year=year(agreement, 1))
        imports = {
            i.period: i
            for i in agreement.savings_imports.filter(kind=ImportKind.USAGE, is_current=True)
        }
        base, current = imports["base"], imports["programme"]
        columns = [selectors.usage_columns(data_import=i) for i in (base, current)]
        frames = [selectors.usage_frame(data_import=i) for i in (base, current)]
        prices = selectors.prices_of(
            data_import=agreement.savings_imports.get(kind=ImportKind.PRICES)
        )
        assert len(columns[0]) == base.row_count == 1200
        assert base.case_count == 400 and current.case_count == 462
    result = computation.result

    def day(value):
        return None if value is None else dt.date.fromisoformat(value)

    participants = [
        engine.Participant(**{**p, **{k: day(v) for k, v in p.items() if k.endswith("_date")}})
        for p in computation.inputs["participants"]
    ]
    opportunities = [
        engine.Opportunity(
            key=o.key,
            name=o.name,
            case_types=o.case_types,
            item_codes=o.item_codes,
            floor_per_case=o.floor_per_case,
            savings_target=o.savings_target,
        )
        for o in result.opportunities
    ]
    kwargs = {
        "terms": result.terms,
        "opportunities": opportunities,
        "participants": participants,
        "year_start": result.year_start,
        "year_end": result.year_end,
        "current_prices": prices,
        "fee_months": 12,
        **computation.inputs["labels"],
    }
    fast = engine.savings_compute(base_usage=columns[0], current_usage=columns[1], **kwargs)
    text = engine.savings_compute(base_usage=frames[0], current_usage=frames[1], **kwargs)
    assert fast.to_dict() == text.to_dict() == result.to_dict()
