"""The PostgreSQL path: COPY through a staging table, COPY out for the engine, all or nothing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection

from savings import services
from savings.importing import usage_partition
from savings.models import DataImport, ImportStatus, UsageRow
from tests.savings.helpers import (
    example_a_agreement,
    import_example_a,
    import_text,
    usage_csv,
    year,
)

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL-only; set DATABASE_URL=postgres://... (CI does)")


def test_example_a_through_copy_comes_out_to_the_cent(world):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        assert UsageRow.objects.count() == 1200 + 1403
        result = services.savings_for_year(programme_year=year(agreement, 1)).result
    assert result.gross_savings == Decimal("147776.01")
    assert result.physician_pool == Decimal("55888.01")


def test_copy_keeps_exact_values_nulls_and_booleans(world):
    agreement = example_a_agreement(world)
    rows = [
        {
            "case_id": "c1",
            "physician_npi": "1000000004",
            "item_code": "A1",
            "unit_cost": "955.6789",
            "quantity": "1.5",
            "notice_date": "",
            "reviewed": "",
            "opted_out": "YES",
            "payer": '"Blue ""Cross"", Inc"',
        }
    ]
    with world.scope():
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )
        row = UsageRow.objects.get()
    assert row.unit_cost == Decimal("955.6789") and row.quantity == Decimal("1.5")
    assert row.notice_date is None and row.reviewed is None and row.opted_out is True
    assert row.payer == 'Blue "Cross", Inc' and row.service_date == dt.date(2025, 3, 1)


def test_a_bad_last_row_rolls_the_copy_back(world):
    agreement = example_a_agreement(world)
    rows = [
        {"case_id": f"c{i}", "physician_npi": "1000000004", "item_code": "A1"} for i in range(1000)
    ]
    rows.append(
        {"case_id": "bad", "physician_npi": "1000000004", "item_code": "A1", "quantity": "-1"}
    )
    with world.scope(), pytest.raises(services.ImportRefused):
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )
    with world.scope():
        assert not UsageRow.objects.exists()


def test_a_duplicate_found_while_the_rows_move_takes_them_back_out(world):
    """The staging table is attached while the file is checked for duplicates; a duplicate still
    leaves nothing behind, and the previous import stays current."""
    agreement = example_a_agreement(world)
    good = [
        {"case_id": f"c{i}", "physician_npi": "1000000004", "item_code": "A1"} for i in range(2000)
    ]
    with world.scope():
        first = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(good[:10]),
        )
    with world.scope(), pytest.raises(services.ImportRefused) as refused:
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u2.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(good + good[:1]),
        )
    assert "duplicate row: case c0 item A1 is already on row 2" in str(refused.value.problems.items)
    with world.scope():
        assert UsageRow.objects.count() == 10
        assert set(UsageRow.objects.values_list("data_import_id", flat=True)) == {first.pk}
        first.refresh_from_db()
        assert first.is_current and first.case_count == 10


def _table_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def _partition_of(name: str) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = to_regclass(%s)",
            [name],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def test_an_import_s_rows_are_its_own_partition(world):
    agreement = example_a_agreement(world)
    rows = [
        {"case_id": f"c{i}", "physician_npi": "1000000004", "item_code": "A1"} for i in range(30)
    ]
    with world.scope():
        first = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows[:10]),
        )
        second = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="v.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )
    for data_import, count in ((first, 10), (second, 30)):
        name = usage_partition(data_import.pk)
        assert _partition_of(name) == UsageRow._meta.db_table
        with connection.cursor() as cursor:
            # The partition's name is built from an integer id (usage_partition).
            cursor.execute(
                f"SELECT count(*), min(data_import_id), max(data_import_id) "  # noqa: S608
                f"FROM {name}"
            )
            assert cursor.fetchone() == (count, data_import.pk, data_import.pk)
    with world.scope():
        assert UsageRow.objects.filter(data_import=second).count() == 30
        ids = list(UsageRow.objects.values_list("pk", flat=True))
    assert len(ids) == len(set(ids)) == 40  # one sequence across the partitions


def test_a_refused_import_leaves_no_table_behind(world):
    agreement = example_a_agreement(world)
    rows = [
        {"case_id": "c1", "physician_npi": "1000000004", "item_code": "A1"},
        {
            "case_id": "c2",
            "physician_npi": "1000000004",
            "item_code": "A1",
            "service_date": "2025-02-30",
        },
    ]
    with world.scope(), pytest.raises(services.ImportRefused) as refused:
        import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )
    assert refused.value.problems.items == [
        {"row": 3, "column": "service_date", "message": "'2025-02-30' is not a date (YYYY-MM-DD)"}
    ]
    with world.scope():
        refused_import = DataImport.objects.get(status=ImportStatus.FAILED)
    assert not _table_exists(usage_partition(refused_import.pk))


def test_deleting_an_import_drops_its_partition(world):
    agreement = example_a_agreement(world)
    rows = [
        {"case_id": f"c{i}", "physician_npi": "1000000004", "item_code": "A1"} for i in range(5)
    ]
    with world.scope():
        data_import = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )
        name = usage_partition(data_import.pk)
        assert _table_exists(name)
        data_import.delete()
        assert not UsageRow.objects.exists()
    assert not _table_exists(name)


def test_rows_written_through_the_orm_land_in_the_default_partition(world):
    """An organization restored from its JSON extract saves rows one by one."""
    agreement = example_a_agreement(world)
    rows = [{"case_id": "c1", "physician_npi": "1000000004", "item_code": "A1"}]
    with world.scope():
        data_import = import_text(
            world,
            agreement,
            kind="usage",
            period="programme",
            name="u.csv",
            programme_year=year(agreement, 1),
            content=usage_csv(rows),
        )
        row = UsageRow.objects.get()
        pk = data_import.pk
        data_import.delete()  # the partition goes; the import comes back as a restore would
        data_import.pk = pk
        data_import.save(force_insert=True)
        row.save(force_insert=True)
        assert list(
            UsageRow.objects.filter(data_import=data_import).values_list("case_id", "unit_cost")
        ) == [("c1", row.unit_cost)]
    assert not _table_exists(usage_partition(data_import.pk))
    assert _partition_of(f"{UsageRow._meta.db_table}_default") == UsageRow._meta.db_table
