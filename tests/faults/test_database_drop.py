"""The database connection drops in the middle of an import (``pg_terminate_backend`` from
another session while the COPY's transaction is open): the import is rolled back whole, the job
is failed with a clear message, and the year's previous import is untouched."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.core.files import File
from django.db import connection
from django_scopes import scopes_disabled

from comanage.core.models import Job, JobStatus
from comanage.core.tasks import DATABASE_LOST
from savings import services
from savings.models import DataImport, ImportStatus, UsageRow
from tests.faults.conftest import big_usage_file, wait_for
from tests.faults.test_worker_killed import _npis
from tests.savings.helpers import example_a_agreement, import_text, usage_csv

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
ROWS = 120_000


def test_a_dropped_connection_rolls_the_import_back_whole_and_fails_the_job(
    world, tmp_path, real_services, media_dir
):
    agreement = example_a_agreement(world)
    npis = _npis(agreement)
    with world.scope():
        previous = import_text(
            world,
            agreement,
            kind="usage",
            period="base",
            base_year=2024,
            name="usage_2024_v1.csv",
            content=usage_csv(
                [
                    {
                        "case_id": "p1",
                        "physician_npi": npis[0],
                        "item_code": "A1",
                        "service_date": "2024-05-01",
                        "notice_date": "",
                    },
                    {
                        "case_id": "p2",
                        "physician_npi": npis[1],
                        "item_code": "B1",
                        "service_date": "2024-06-01",
                        "notice_date": "",
                    },
                ]
            ),
        )
    with scopes_disabled():
        before = sorted(UsageRow.objects.values_list("pk", "case_id", "item_code", "unit_cost"))
    assert len(before) == 2

    path = big_usage_file(tmp_path / "usage_2024_v2.csv", rows=ROWS, npis=npis)
    with world.scope(), open(path, "rb") as handle:
        data_import = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="base",
            base_year=2024,
            upload=File(handle, name=path.name),
            user=world.users["administrator"],
        )

    backend: list[int] = []
    raised: list[BaseException] = []

    def import_in_a_worker_thread() -> None:
        try:
            connection.ensure_connection()
            backend.append(connection.connection.get_backend_pid())
            with world.scope():
                # Eager Celery: the task runs right here, on this thread's connection.
                services.data_import_start(
                    data_import=data_import, user=world.users["administrator"]
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            raised.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=import_in_a_worker_thread)
    thread.start()
    job_id = wait_for(lambda: _job_of(data_import.pk), timeout=60, what="the job")
    wait_for(
        lambda: (cache.get(f"job-progress:{job_id}") or {}).get("progress", 0) > 1,
        timeout=90,
        what="the import to be loading rows",
        interval=0.02,
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [backend[0]])
        assert cursor.fetchone()[0] is True
    thread.join(timeout=120)
    assert not thread.is_alive()

    # The task reported the failure (eager Celery re-raises it) ...
    assert raised and "connection" in str(raised[0]).lower() + type(raised[0]).__name__.lower()
    with scopes_disabled():
        job = Job.objects.get(pk=job_id)
        assert job.status == JobStatus.FAILED
        assert job.message == DATABASE_LOST
        # ... nothing of the file was kept ...
        assert not UsageRow.objects.filter(data_import_id=data_import.pk).exists()
        stored = DataImport.objects.get(pk=data_import.pk)
        assert stored.status == ImportStatus.FAILED and not stored.is_current
        # ... and the year's previous import is exactly as it was.
        assert (
            sorted(UsageRow.objects.values_list("pk", "case_id", "item_code", "unit_cost"))
            == before
        )
        previous.refresh_from_db()
        assert previous.is_current and previous.status == ImportStatus.APPLIED

    # Nothing is lost: the same import, started again, applies once and supersedes the old one.
    with world.scope():
        retry = services.data_import_start(data_import=stored, user=world.users["administrator"])
    with scopes_disabled():
        retry.refresh_from_db()
        assert retry.status == JobStatus.SUCCEEDED, retry.message
        assert UsageRow.objects.filter(data_import_id=data_import.pk).count() == ROWS
        previous.refresh_from_db()
        assert not previous.is_current


def _job_of(data_import_id: int) -> int | None:
    with scopes_disabled():
        return DataImport.objects.filter(pk=data_import_id).values_list("job_id", flat=True).first()
