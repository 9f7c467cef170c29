"""Redis is unavailable.

* As the cache: pages and the API still answer (the cache degrades to misses, the API throttle
  and live job progress do not 500).
* As the broker: confirming an import says clearly that the worker cannot be reached, the job
  stays queued, and once Redis is back ``jobs_requeue_stale`` sends it and a worker completes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.cache import cache, caches
from django.core.files import File
from django.urls import reverse
from django_scopes import scopes_disabled

from comanage.celery import TASK_ROUTES
from comanage.core import jobs
from comanage.core.cache import ResilientRedisCache
from comanage.core.models import ApiToken, Job, JobStatus
from comanage.core.tasks import jobs_requeue_stale
from savings import services
from savings.models import DataImport, ImportStatus, UsageRow
from tests.faults.conftest import wait_for
from tests.savings.helpers import EXAMPLE_A, example_a_agreement

#: The queue the import task is routed to (comanage/celery.py); the message waits there.
IMPORTS_QUEUE = TASK_ROUTES["savings.tasks.data_import_task"]

pytestmark = pytest.mark.postgres
DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connection refused


@pytest.fixture
def cache_down(settings, real_services) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "comanage.core.cache.ResilientRedisCache",
            "LOCATION": DEAD_REDIS,
            "KEY_PREFIX": "faults",
        }
    }
    assert isinstance(caches["default"], ResilientRedisCache)


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """Point the Celery app's producer at another broker URL (a dead one, then back)."""
    from comanage.celery import app

    def drop_pools() -> None:
        # Forget the pools bound to the old URL (kombu's global registry keeps them open).
        app._pool = None
        app.amqp._producer_pool = None

    saved = app.conf.broker_url
    drop_pools()
    app.conf.broker_url = url
    try:
        yield
    finally:
        drop_pools()
        app.conf.broker_url = saved


@pytest.mark.django_db
def test_with_the_cache_down_pages_the_api_and_job_progress_still_answer(world, cache_down):
    # The cache itself: every operation is a miss, none raises.
    assert cache.get("anything") is None
    assert cache.get("anything", "fallback") == "fallback"
    cache.set("k", 1)
    assert cache.add("k", 1) is False
    assert cache.get_or_set("k", 7) == 7
    assert cache.delete("k") is False
    assert cache.get_many(["a", "b"]) == {}
    with pytest.raises(ValueError):
        cache.incr("k")

    with world.scope():
        job = jobs.job_create(
            organization=world.org, kind="savings.import", user=world.users["administrator"]
        )
        assert jobs.job_start(job.pk)
        jobs.job_progress(job.pk, 40, "Checking rows")  # swallowed, not raised
        job.refresh_from_db()
        assert jobs.job_live_state(job)["status"] == JobStatus.RUNNING  # from the row
        jobs.job_lease_release(job.pk)

    web = world.client("administrator")
    for url in (
        reverse("org_home", args=[world.org.slug]),
        reverse("job_detail", args=[world.org.slug, job.pk]),
        reverse("job_progress", args=[world.org.slug, job.pk]),
        reverse("agreement_list", args=[world.org.slug]),
    ):
        assert web.get(url, follow=True).status_code == 200, url

    # The API's rate throttle keeps its counters in the cache: with Redis down it lets the
    # request through instead of failing it.
    _token, raw = ApiToken.issue(user=world.users["administrator"], name="faults")
    for _ in range(3):
        response = web.get(
            f"/api/v1/organizations/{world.org.slug}/jobs/{job.pk}/",
            HTTP_AUTHORIZATION=f"Bearer {raw}",
        )
        assert response.status_code == 200, response.content[:300]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_the_job_waits_with_a_clear_message_and_runs_once_it_is_back(
    world, redis_client, not_eager, start_worker, media_dir
):
    agreement = example_a_agreement(world)
    with world.scope(), open(EXAMPLE_A / "usage_2024.csv", "rb") as handle:
        data_import = services.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="base",
            base_year=2024,
            upload=File(handle, name="usage_2024.csv"),
            user=world.users["administrator"],
        )
    web = world.client("administrator")
    confirm = reverse("savings_import_confirm", args=[world.org.slug, agreement.pk, data_import.pk])

    with broker_at(DEAD_REDIS):
        response = web.post(confirm, follow=True)
    assert response.status_code == 200
    with scopes_disabled():
        job = Job.objects.get(pk=DataImport.objects.get(pk=data_import.pk).job_id)
    assert job.status == JobStatus.QUEUED
    assert job.message == jobs.WORKER_UNAVAILABLE
    # The user is told, on the page they land on or on the job's page.
    page = web.get(reverse("job_detail", args=[world.org.slug, job.pk]))
    assert page.status_code == 200
    assert "cannot be reached" in page.content.decode()
    assert redis_client.llen(IMPORTS_QUEUE) == 0  # nothing reached the real broker

    # Still down when the sweep runs: nothing is lost, the job just keeps waiting.
    with broker_at(DEAD_REDIS):
        assert jobs_requeue_stale(queued_for=0) == 0
    job.refresh_from_db()
    assert job.status == JobStatus.QUEUED

    # Redis is back: the sweep sends it, a worker runs it, once.
    assert jobs_requeue_stale(queued_for=0) == 1
    assert redis_client.llen(IMPORTS_QUEUE) == 1
    worker = start_worker("back")
    done = wait_for(lambda: _finished(job.pk), timeout=90, what="the job to finish", worker=worker)
    assert done.status == JobStatus.SUCCEEDED, done.message
    with scopes_disabled():
        stored = DataImport.objects.get(pk=data_import.pk)
        assert stored.status == ImportStatus.APPLIED
        assert UsageRow.objects.filter(data_import=stored).count() == stored.row_count > 0


def _finished(job_id: int) -> Job | None:
    with scopes_disabled():
        job = Job.objects.get(pk=job_id)
    return job if job.is_finished else None
