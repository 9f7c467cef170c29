"""``RowCounts`` (tests/fuzz/tables.py), which the bad-values walk trusts to see anything stored:
it counts again when a row comes or goes (also inside a savepoint rolled back, also by a
TRUNCATE), and only then."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection, transaction

from comanage.core.models import Job
from savings.models import UsageRow
from tests import factories as f
from tests.fuzz.tables import RowCounts, tenant_row_counts


@pytest.mark.django_db
def test_row_counts_follow_every_row_that_comes_or_goes(world, no_scopes):  # type: ignore[no-untyped-def]
    counts = RowCounts(also=(Job,))
    before = counts()
    assert before == {**tenant_row_counts(), "core.Job": Job.objects.count()}
    assert counts() == before

    practice = f.PracticeFactory(organization=world.org)
    stored = counts()
    assert stored["agreements.Practice"] == before["agreements.Practice"] + 1
    assert stored == {**tenant_row_counts(), "core.Job": Job.objects.count()}

    counted = counts.counted
    with transaction.atomic():  # stored, then rolled back
        sid = transaction.savepoint()
        f.PracticeFactory(organization=world.org)
        transaction.savepoint_rollback(sid)
    assert counts() == stored
    assert counts.counted == counted + 1  # it looked again: a row had come (and gone)

    practice.delete()
    gone = counts()
    assert gone["agreements.Practice"] == before["agreements.Practice"]
    assert gone == {**tenant_row_counts(), "core.Job": Job.objects.count()}
    if connection.vendor == "postgresql":
        counted = counts.counted
        for _ in range(3):
            assert counts() == gone
        assert counts.counted == counted  # nothing moved: not counted again

        # A TRUNCATE counts no deleted row, but gives the table a new file.
        history = type(practice).history.model
        assert gone[history._meta.label] > 0
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no deferred check pending
            cursor.execute(f"TRUNCATE {connection.ops.quote_name(history._meta.db_table)}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        assert counts()[history._meta.label] == 0


@pytest.mark.django_db
def test_row_counts_see_a_row_stored_in_a_partition(world, no_scopes):  # type: ignore[no-untyped-def]
    """The usage table is partitioned on PostgreSQL (one partition per import, a default one
    for rows written through the ORM): its rows are counted on its partitions, not on it."""
    counts = RowCounts()
    before = counts()
    UsageRow.objects.create(
        organization=world.org,
        data_import_id=2**31 - 1,  # no database constraint: the default partition takes it
        case_id="C1",
        service_date=dt.date(2025, 1, 2),
        case_type="inpatient",
        physician_npi="1234567893",
        federal_program=False,
        item_code="ITEM-1",
        quantity=Decimal("1"),
        unit_cost=Decimal("10.00"),
        severity_weight=Decimal("1.0000"),
    )
    assert counts()["savings.UsageRow"] == before["savings.UsageRow"] + 1
