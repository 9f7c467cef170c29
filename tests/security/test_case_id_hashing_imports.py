"""With CASE_ID_HASHING on, both imports store each case id as an HMAC under the organization's
own key, and every figure still comes out to the cent (issue 9: data protection)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django_scopes import scopes_disabled

from comanage.core.security import case_id_hash
from indicators import selectors as indicator_selectors
from indicators import services as indicator_services
from indicators.models import CaseMembership
from savings import services as savings_services
from savings.models import UsageRow
from tests.indicators.conftest import EXAMPLE_D, ortho_build
from tests.savings.helpers import example_a_agreement, import_example_a, year

HEX64 = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def hashing_on(settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.COMANAGE_CASE_ID_HASHING = True
    settings.MEDIA_ROOT = tmp_path


@pytest.mark.usefixtures("hashing_on")
def test_usage_rows_keep_hashed_case_ids_and_example_a_still_comes_out(world):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        stored = set(UsageRow.objects.values_list("case_id", flat=True))
        result = savings_services.savings_for_year(programme_year=year(agreement, 1)).result
    assert all(HEX64.match(c) for c in stored)
    assert case_id_hash(world.org, "c1") in stored
    assert "c1" not in stored
    assert result.physician_pool == Decimal("55888.01")
    assert [o.eligible_cases for o in result.opportunities] == [455, 455, 455]


@pytest.mark.usefixtures("hashing_on")
def test_case_memberships_keep_hashed_ids_and_the_drill_down_finds_an_exact_id(world):
    ortho = ortho_build(world.org)
    with scopes_disabled():
        case_import = indicator_services.case_import_create(
            agreement=ortho.agreement,
            programme_year=ortho.year,
            period=ortho.annual,
            data=EXAMPLE_D.read_bytes(),
            filename="cases.csv",
            user=None,
            indicator_keys=["vte_prophylaxis"],
        )
        outcome = indicator_services.case_import_apply(case_import=case_import)
        ids = list(
            CaseMembership.objects.filter(case_import=case_import).values_list("case_id", flat=True)
        )
        found = indicator_selectors.case_memberships(
            case_import=case_import, indicator_index=0, kind="proportion", search="E07"
        )
        found_ids = list(found.values_list("case_id", flat=True))
    assert outcome.results[0].display_value == Decimal("92.31")
    assert len(ids) == 17
    assert all(HEX64.match(c) for c in ids)
    assert found_ids == [case_id_hash(world.org, "E07")]


def test_the_same_case_id_hashes_differently_in_another_organization(world):
    assert case_id_hash(world.org, "E07") != case_id_hash(world.other_org, "E07")
