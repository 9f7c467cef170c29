"""The worker is killed (SIGKILL) in the middle of an import: nothing partial is kept, nothing is
applied twice, and the job does not stay "running" for ever.

A real ``celery worker --pool solo`` runs the import of a 200,000-row usage file; the test
kills it once the job is RUNNING and rows are being loaded (the COPY's transaction is open),
then checks the database, starts a second worker and waits for the job to finish there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.files import File
from django_scopes import scopes_disabled

from agreements import models as am
from comanage.celery import TASK_ROUTES
from comanage.core import jobs
from comanage.core.models import BusinessEvent, Job, JobStatus
from comanage.core.tasks import jobs_requeue_stale
from savings import services
from savings.models import DataImport, ImportStatus, UsageRow
from tests.faults.conftest import big_usage_file, wait_for
from tests.savings.helpers import example_a_agreement

#: The queue the import task is routed to (comanage/celery.py); the message waits there.
IMPORTS_QUEUE = TASK_ROUTES["savings.tasks.data_import_task"]

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
ROWS = 200_000


def _npis(agreement) -> list[str]:
    with scopes_disabled():
        return list(
            am.Participation.objects.filter(agreement=agreement).values_list(
                "physician__npi", flat=True
            )
        )


def _queue_big_import(world, agreement, tmp_path: Path) -> tuple[DataImport, Job]:
    path = big_usage_file(tmp_path / "usage_2024_big.csv", rows=ROWS, npis=_npis(agreement))
    with world.scope(), open(path, "rb") as handle:
        data_import = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="base",
            base_year=2024,
            upload=File(handle, name=path.name),
            user=world.users["administrator"],
        )
        job = services.data_import_start(data_import=data_import, user=world.users["administrator"])
    return data_import, job


def _job(job_id: int) -> Job:
    with scopes_disabled():
        return Job.objects.get(pk=job_id)


def _loading_rows(job_id: int) -> bool:
    """RUNNING, and the import has read a batch (progress > 1): the transaction is open."""
    live = cache.get(f"job-progress:{job_id}") or {}
    return _job(job_id).status == JobStatus.RUNNING and live.get("progress", 0) > 1


def _nothing_partial(data_import: DataImport) -> None:
    with scopes_disabled():
        assert UsageRow.objects.filter(data_import_id=data_import.pk).count() == 0
        assert UsageRow.objects.count() == 0
        stored = DataImport.objects.get(pk=data_import.pk)
        assert stored.status != ImportStatus.APPLIED and not stored.is_current


def _applied_exactly_once(data_import: DataImport) -> None:
    with scopes_disabled():
        stored = DataImport.objects.get(pk=data_import.pk)
        assert stored.status == ImportStatus.APPLIED and stored.is_current
        assert stored.row_count == ROWS
        assert UsageRow.objects.filter(data_import_id=data_import.pk).count() == ROWS
        assert UsageRow.objects.count() == ROWS  # no duplicate rows
        assert UsageRow.objects.values("case_id", "item_code").distinct().count() == ROWS
        assert DataImport.objects.filter(status=ImportStatus.APPLIED).count() == 1
        assert BusinessEvent.objects.filter(name="savings.file_applied").count() == 1


def test_a_killed_worker_s_import_is_redelivered_and_applied_exactly_once(
    world, tmp_path, redis_client, not_eager, start_worker
):
    agreement = example_a_agreement(world)
    data_import, job = _queue_big_import(world, agreement, tmp_path)
    assert redis_client.llen(IMPORTS_QUEUE) == 1  # the message waits in the broker

    first = start_worker("doomed")
    wait_for(
        lambda: _loading_rows(job.pk),
        timeout=90,
        what="the import to be loading rows",
        worker=first,
        interval=0.02,
    )
    first.kill()

    # The COPY's transaction died with the worker: not one row of the file is visible.
    _nothing_partial(data_import)
    assert _job(job.pk).status == JobStatus.RUNNING
    wait_for(
        lambda: not jobs.job_lease_is_held(job.pk),
        timeout=10,
        what="PostgreSQL to free the dead worker's lease",
    )

    # The unacknowledged message comes back to a new worker, which takes the orphaned job over.
    second = start_worker("rescuer")
    done = wait_for(
        lambda: _job(job.pk).is_finished and _job(job.pk),
        timeout=120,
        what="the job to finish on the second worker",
        worker=second,
    )
    assert done.status == JobStatus.SUCCEEDED, done.message
    assert done.attempts == 2
    assert f"{ROWS} rows applied" in done.message
    _applied_exactly_once(data_import)

    # Later deliveries or sweeps change nothing.
    assert jobs_requeue_stale(queued_for=0) == 0
    _applied_exactly_once(data_import)


def test_a_killed_worker_s_job_is_sent_again_by_the_sweep_when_no_message_comes_back(
    world, tmp_path, redis_client, not_eager, start_worker
):
    """If the message is lost too (e.g. Redis restarted), ``jobs_requeue_stale`` finds the
    RUNNING job nobody holds and sends it again; a live worker's job is never touched."""
    agreement = example_a_agreement(world)
    data_import, job = _queue_big_import(world, agreement, tmp_path)
    first = start_worker("doomed", CELERY_VISIBILITY_TIMEOUT="3600")
    wait_for(
        lambda: _loading_rows(job.pk),
        timeout=90,
        what="the import to be loading rows",
        worker=first,
        interval=0.02,
    )
    assert jobs_requeue_stale(queued_for=0) == 0  # alive: its lease is held
    assert _job(job.pk).status == JobStatus.RUNNING
    first.kill()
    redis_client.flushdb()  # the unacknowledged message is gone with it
    _nothing_partial(data_import)
    wait_for(
        lambda: not jobs.job_lease_is_held(job.pk),
        timeout=10,
        what="PostgreSQL to free the dead worker's lease",
    )

    assert jobs_requeue_stale(queued_for=120) == 1
    revived = _job(job.pk)
    assert revived.status == JobStatus.QUEUED and revived.message == jobs.WORKER_LOST
    second = start_worker("rescuer")
    done = wait_for(
        lambda: _job(job.pk).is_finished and _job(job.pk),
        timeout=120,
        what="the job to finish on the second worker",
        worker=second,
    )
    assert done.status == JobStatus.SUCCEEDED, done.message
    _applied_exactly_once(data_import)
