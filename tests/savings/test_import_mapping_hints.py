"""The mapping step says before anything runs when the first rows' dates read both as
month/day and as day/month (the import would be refused unless a later row settles it)."""

from __future__ import annotations

import pytest

from comanage.core.tabular.step import date_hints, mapping_step
from savings.importing import USAGE_FIELDS
from tests.savings.test_import_mapping import _proposed, _receive, _us_usage, agreement  # noqa: F401

pytestmark = pytest.mark.django_db


def test_ambiguous_first_dates_are_named_on_the_step_and_on_the_page(world, agreement):  # noqa: F811
    with world.scope():
        data_import = _receive(world, agreement, "amb.csv", _us_usage(["03/04/2025", "05/06/2025"]))
        step, _columns = _proposed(world, data_import)
    assert [h["column"] for h in step["hints"]] == ["DOS"]
    assert (
        "such as 03/04/2025, fit both month/day/year and day/month/year"
        in (step["hints"][0]["message"])
    )
    page = world.client("administrator").get(
        f"/o/{world.org.slug}/agreements/{agreement.pk}/savings/imports/{data_import.pk}/"
    )
    assert page.status_code == 200
    assert "such as 03/04/2025, fit both month/day/year" in page.content.decode()


def test_dates_a_day_over_12_settles_give_no_hint(world, agreement):  # noqa: F811
    with world.scope():
        data_import = _receive(world, agreement, "us.csv", _us_usage(["03/04/2025", "1/13/2025"]))
        step, _columns = _proposed(world, data_import)
    assert step["hints"] == []


def test_a_chosen_date_format_or_iso_dates_give_no_hint():
    fields = USAGE_FIELDS
    rows = [["Case", "DOS"], ["c1", "2025-03-04"], ["c2", "2025-05-06"]]
    assert mapping_step(rows, fields=fields)["hints"] == []
    samples = {"DOS": ["03/04/2025"]}
    assert date_hints(fields, {"DOS": "service_date"}, samples)[0]["column"] == "DOS"
