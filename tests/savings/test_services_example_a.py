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
        D("91856.01"), D("60000.00"), D("-4080.00")]
    assert [o.eligible_cases for o in result.opportunities] == [455, 455, 455]
    assert result.gross_savings == D("147776.01")
    assert result.admin_fees == D("36000.00")
    assert result.net_savings == D("111776.01")
    assert result.physician_pool == D("55888.01")
    assert result.hospital_share == D("55888.00")
    amounts = {p.last_name: p.amount for p in result.physicians}
    assert amounts == {"Adams": D("18629.34"), "Baker": D("18629.34"),
                       "Clark": D("18629.33"), "Diaz": D("0.00")}
    inputs = computation.inputs
    assert inputs["usage"]["sha256"] and inputs["price_file"]["sha256"]
    assert inputs["base_usage"][0]["file"] == "usage_2024.csv"


def test_the_same_inputs_give_the_same_figures_and_one_stored_calculation(world):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        first = services.savings_calculation_run(programme_year=year(agreement, 1),
                                                 user=world.users["administrator"])
        again = services.savings_calculation_run(programme_year=year(agreement, 1),
                                                 user=world.users["administrator"])
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
        services.data_import_from_path(agreement=agreement, kind="usage", period="base",
                                       base_year=2024, path=EXAMPLE_A / "usage_2024.csv",
                                       user=admin)
        services.data_import_from_path(agreement=agreement, kind="usage", period="programme",
                                       programme_year=year(agreement, 1),
                                       path=EXAMPLE_A / "usage_2025.csv", user=admin)
        with pytest.raises(SavingsInputError, match="price file is missing"):
            services.savings_for_year(programme_year=year(agreement, 1))
