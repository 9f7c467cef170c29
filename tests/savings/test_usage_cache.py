"""The columnar copy of applied usage imports (savings.columnar): same figures, verified,
rebuilt when damaged, never another tenant's, gone with its import."""

from __future__ import annotations

import dataclasses
import os
import shutil
from unittest import mock

import numpy as np
import pyarrow as pa
import pytest

from comanage.core.inputs import InputError
from savings import columnar, selectors, services
from savings.models import DataImport, ImportKind, SavingsCalculation
from tests.savings.helpers import (
    EXAMPLE_A,
    example_a_agreement,
    import_example_a,
    import_text,
    upload,
    year,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.SAVINGS_USAGE_CACHE = True
    columnar.memory_clear()
    yield tmp_path
    columnar.memory_clear()


@pytest.fixture
def example(world, media):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    return agreement


def _usage_imports(world, agreement) -> list[DataImport]:
    with world.scope():
        return list(
            DataImport.objects.filter(
                agreement=agreement, kind=ImportKind.USAGE, is_current=True
            ).order_by("pk")
        )


def _stored_run(world, agreement) -> tuple[dict, str, str]:
    """A year's calculation stored, read back from its row, then removed again."""
    with world.scope():
        calculation = services.savings_calculation_run(
            programme_year=year(agreement, 1), user=world.users["administrator"]
        )
        stored = SavingsCalculation.objects.get(pk=calculation.pk)
        figures = (stored.result, stored.result_checksum, stored.inputs_checksum)
        SavingsCalculation.objects.filter(pk=calculation.pk).delete()
    return figures


def _same_columns(left, right) -> None:
    for name in (
        "case_code",
        "case_type_code",
        "npi_code",
        "item_code",
        "service_day",
        "federal",
        "opted_out",
        "has_notice",
        "severity",
        "quantity",
        "unit_cost",
    ):
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)
    for name in (
        "case_values",
        "case_type_values",
        "npi_values",
        "item_values",
        "severity_digits",
        "quantity_digits",
    ):
        assert list(np.atleast_1d(getattr(left, name))) == list(
            np.atleast_1d(getattr(right, name))
        ), name


def test_a_year_is_identical_with_the_cache_removed_cold_and_warm(world, example, settings):
    settings.SAVINGS_USAGE_CACHE = False
    without = _stored_run(world, example)
    assert not any(columnar.directory(world.org.pk).glob("*.arrow"))

    settings.SAVINGS_USAGE_CACHE = True
    cold = _stored_run(world, example)
    imports = _usage_imports(world, example)
    assert all(columnar.path_of(i).exists() for i in imports)
    with mock.patch.object(
        selectors, "_usage_table_from_database", side_effect=AssertionError("read the database")
    ):
        warm = _stored_run(world, example)
    assert cold == without
    assert warm == without


def test_a_corrupted_or_missing_file_is_rebuilt_from_the_database(world, example):
    with world.scope():
        expected = services.savings_for_year(programme_year=year(example, 1)).result.to_dict()
    base, current = _usage_imports(world, example)
    with world.scope():
        from_database = selectors._columns_from_arrow(selectors._usage_table_from_database(base))
    damaged = columnar.path_of(base)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    columnar.path_of(current).unlink()
    assert columnar.table_read(base) is None
    assert columnar.table_read(current) is None

    with world.scope():
        again = services.savings_for_year(programme_year=year(example, 1)).result.to_dict()
        _same_columns(selectors.usage_columns(data_import=base), from_database)
        # A calculation reads the prepared files; the rows are rebuilt when next read.
        selectors.usage_columns(data_import=current)
    assert again == expected
    assert columnar.table_read(base) is not None
    assert columnar.table_read(current) is not None


def test_a_file_of_another_organization_is_never_read(world, example):
    base, _current = _usage_imports(world, example)
    with world.scope():
        from_database = selectors._columns_from_arrow(selectors._usage_table_from_database(base))
        selectors.usage_columns(data_import=base)
    own = columnar.path_of(base)
    assert f"org-{world.org.pk}" in own.parts and own.name.startswith(f"import-{base.pk}-")

    # Another tenant's file for an import with the same id and file, different rows, copied
    # over this import's file together with its (matching) checksum.
    foreign = DataImport(
        pk=base.pk,
        organization_id=world.other_org.pk,
        sha256=base.sha256,
        row_count=base.row_count,
        uploaded_at=base.uploaded_at,
        status=base.status,
    )
    table = columnar.table_read(base)
    tampered = table.set_column(
        table.column_names.index("quantity"),
        "quantity",
        pa.array(np.full(table.num_rows, 990000, dtype=np.int64)),
    )
    written = columnar.table_write(foreign, tampered)
    assert written is not None and f"org-{world.other_org.pk}" in written.parts
    shutil.copyfile(written, own)
    shutil.copyfile(written.with_suffix(".sha256"), own.with_suffix(".sha256"))

    assert columnar.table_read(base) is None
    with world.scope():
        _same_columns(selectors.usage_columns(data_import=base), from_database)


def test_deleting_an_import_removes_its_file(world, example, django_capture_on_commit_callbacks):
    base, current = _usage_imports(world, example)
    with world.scope():
        selectors.usage_columns(data_import=base)
        selectors.usage_columns(data_import=current)
    kept = columnar.path_of(current)
    gone = columnar.path_of(base)
    assert gone.exists() and kept.exists()
    with world.scope(), django_capture_on_commit_callbacks(execute=True):
        DataImport.objects.get(pk=base.pk).delete()
    assert not gone.exists() and not gone.with_suffix(".sha256").exists()
    assert kept.exists()


def test_an_import_not_applied_yet_is_not_stored(world, example):
    base, _current = _usage_imports(world, example)
    base.status = "queued"
    with world.scope():
        selectors.usage_columns(data_import=base)
    assert not columnar.path_of(base).exists()


@pytest.mark.parametrize(
    "quantity_pct",
    [
        {"A1": "90", "B2": "33.3", "C1": 0},
        {"A2": "112.125"},
    ],
)
def test_a_quantity_what_if_on_the_columns_matches_the_text_path(
    world, example, settings, quantity_pct
):
    """The slider what-if rescales the prepared sums (and, without them, the typed columns);
    the figures are the text path's."""
    overrides = {"quantity_pct": quantity_pct}
    with world.scope():
        plain = services.savings_for_year(programme_year=year(example, 1)).result
        fast = services.savings_for_year(programme_year=year(example, 1), overrides=overrides)
        settings.SAVINGS_USAGE_CACHE = False
        columns = services.savings_for_year(programme_year=year(example, 1), overrides=overrides)
        with (
            mock.patch.object(services.calculation, "_scale_quantity_columns", return_value=None),
            mock.patch.object(selectors, "usage_frame", wraps=selectors.usage_frame) as text,
        ):
            slow = services.savings_for_year(programme_year=year(example, 1), overrides=overrides)
        assert text.called
    assert fast.result.to_dict() == slow.result.to_dict() == columns.result.to_dict()
    assert fast.result.checksum() == slow.result.checksum()
    assert fast.inputs_checksum == slow.inputs_checksum
    assert fast.result.to_dict() != plain.to_dict()


def test_a_quantity_what_if_below_zero_is_refused_on_the_columns(world, example):

    with world.scope(), pytest.raises(InputError, match="below the minimum of 0"):
        services.savings_for_year(
            programme_year=year(example, 1), overrides={"quantity_pct": {"A1": "-5"}}
        )


# --------------------------------------------------------------------------------------------
# The prepared form (what a calculation and a what-if read) and this process's memory of it


def corrected_usage() -> str:
    """Example A's year 1 with every B2 quantity doubled."""
    original = (EXAMPLE_A / "usage_2025.csv").read_text()
    corrected = original.replace(",B2,1,", ",B2,2,")
    assert corrected != original
    return corrected


def _rows_not_read():
    raise AssertionError("read the rows")


def _figures(world, agreement, **kwargs):
    with world.scope():
        computation = services.savings_for_year(programme_year=year(agreement, 1), **kwargs)
    return computation.result.to_dict(), computation.inputs_checksum


def test_a_warm_call_reads_neither_rows_nor_files_and_a_new_process_reads_the_files(world, example):
    cold = _figures(world, example)
    imports = _usage_imports(world, example)
    assert all(columnar.prepared_path(i).exists() for i in imports)
    no_rows = mock.patch.object(
        selectors, "usage_columns", side_effect=AssertionError("read the rows")
    )
    no_prepare = mock.patch.object(
        columnar.engine, "usage_prepare", side_effect=AssertionError("prepared again")
    )
    with (
        no_rows,
        no_prepare,
        mock.patch.object(columnar, "prepared_read", wraps=columnar.prepared_read) as read,
    ):
        warm = _figures(world, example)
        what_if = _figures(world, example, overrides={"quantity_pct": {"A1": "80"}})
        assert read.call_count == 0  # nothing hashed or decoded again
        columnar.memory_clear()  # another process: reads and verifies each file once
        fresh = _figures(world, example)
        assert read.call_count == len(imports)
        _figures(world, example)
        assert read.call_count == len(imports)
    assert warm == cold == fresh
    assert what_if[0] != cold[0]


def _tamper(path, *, keep_times: bool) -> None:
    """Change bytes in place, same size, and (if asked) put the modification time back."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x01
    path.write_bytes(bytes(data))
    if keep_times:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


@pytest.mark.parametrize("keep_times", [False, True])
def test_a_tampered_prepared_file_is_refused_even_when_held_in_memory(
    world, example, keep_times, caplog
):
    expected = _figures(world, example)
    base, _current = _usage_imports(world, example)
    path = columnar.prepared_path(base)
    _tamper(path, keep_times=keep_times)
    assert columnar.prepared_read(base) is None
    with mock.patch.object(columnar, "prepared_read", wraps=columnar.prepared_read) as read:
        again = _figures(world, example)
        assert read.call_count == 1  # the memory was not trusted: the file changed
    assert again == expected
    assert "does not match its SHA-256" in caplog.text
    assert columnar.prepared_read(base) is not None  # rebuilt from the rows


def test_a_prepared_file_of_another_organization_is_never_read(world, example):
    expected = _figures(world, example)
    base, _current = _usage_imports(world, example)
    foreign = DataImport(
        pk=base.pk,
        organization_id=world.other_org.pk,
        sha256=base.sha256,
        row_count=base.row_count,
        uploaded_at=base.uploaded_at,
        status=base.status,
    )
    prepared, _signature = columnar.prepared_read(base)
    doubled = dataclasses.replace(
        prepared,
        total_quantity=tuple(2 * v for v in prepared.total_quantity),
        total_cost=tuple(2 * v for v in prepared.total_cost),
        _memo={},
    )
    assert columnar.prepared_write(foreign, doubled) is not None
    written, own = columnar.prepared_path(foreign), columnar.prepared_path(base)
    assert f"org-{world.other_org.pk}" in written.parts
    shutil.copyfile(written, own)
    shutil.copyfile(written.with_suffix(".sha256"), own.with_suffix(".sha256"))

    assert columnar.prepared_read(base) is None
    assert _figures(world, example) == expected


def test_a_replaced_import_is_not_served_from_memory_and_a_deleted_one_is_forgotten(
    world, example, settings, django_capture_on_commit_callbacks
):
    before = _figures(world, example)
    _base, replaced = _usage_imports(world, example)
    with world.scope():
        prepared_before = columnar.prepared_of(
            replaced, columns=_rows_not_read, label="programme year"
        )
    # A corrected file for the same year supersedes the applied one.
    corrected = corrected_usage()
    with world.scope():
        import_text(
            world,
            example,
            kind="usage",
            period="programme",
            name="usage_2025_corrected.csv",
            content=corrected,
            programme_year=year(example, 1),
        )
    after = _figures(world, example)
    settings.SAVINGS_USAGE_CACHE = False
    assert after == _figures(world, example)  # the rows of the new import, read directly
    settings.SAVINGS_USAGE_CACHE = True
    assert after[0] != before[0]

    # Deleting the superseded import removes its files and this process's memory of it.
    with world.scope(), django_capture_on_commit_callbacks(execute=True):
        DataImport.objects.get(pk=replaced.pk).delete()
    assert not columnar.prepared_path(replaced).exists()
    with world.scope():
        rebuilt = columnar.prepared_of(
            replaced, columns=lambda: selectors.usage_columns(data_import=replaced), label="x"
        )
    assert rebuilt is not prepared_before


def test_a_prepared_file_removed_by_another_process_is_not_served_from_memory(world, example):
    expected = _figures(world, example)
    _base, current = _usage_imports(world, example)
    columnar.prepared_path(current).unlink()
    with mock.patch.object(columnar, "prepared_write", wraps=columnar.prepared_write) as write:
        assert _figures(world, example) == expected
        assert write.call_count == 1
    assert columnar.prepared_path(current).exists()


def test_an_import_applied_by_its_worker_is_prepared_for_the_first_calculation(
    world, media, django_capture_on_commit_callbacks
):
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope(), django_capture_on_commit_callbacks(execute=True):
        received = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="programme",
            programme_year=year(agreement, 1),
            upload=upload("usage_2025_again.csv", corrected_usage()),
            user=world.users["administrator"],
        )
        services.data_import_start(data_import=received, user=world.users["administrator"])
    with world.scope():
        applied = DataImport.objects.get(pk=received.pk)
    assert applied.status == "applied" and applied.is_current
    assert columnar.prepared_path(applied).exists()
    columnar.memory_clear()
    with world.scope():
        prepared = columnar.prepared_of(applied, columns=_rows_not_read, label="programme year")
    assert prepared.rows == applied.row_count


def test_a_process_keeps_no_more_prepared_imports_than_its_budget(world, example, settings):
    settings.SAVINGS_PREPARED_MEMORY_MB = 0
    expected = _figures(world, example)
    with mock.patch.object(columnar, "prepared_read", wraps=columnar.prepared_read) as read:
        assert _figures(world, example) == expected
        assert read.call_count == len(_usage_imports(world, example))  # read again, not kept
    assert not columnar._MEMORY
