"""Background jobs: create, enqueue, report progress, finish.

Live progress goes to the cache so that the page polling it sees the figure while the work's own
transaction is still open; the row is updated at the start and the end.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from .models import Job, JobStatus, Organization, User

log = logging.getLogger(__name__)
MAX_ERRORS_KEPT = 100
WORKER_UNAVAILABLE = (
    "The background worker cannot be reached right now. The job is saved and will start as "
    "soon as the worker is back."
)


class DuplicateJob(Exception):
    def __init__(self, existing: Job):
        super().__init__(f"The same work is already {existing.get_status_display().lower()}.")
        self.existing = existing


def _cache_key(job_id: int) -> str:
    return f"job-progress:{job_id}"


def job_create(*, organization: Organization, kind: str, user: User | None,
               params: dict[str, Any] | None = None, dedupe_key: str = "") -> Job:
    """Create a queued job. A live job with the same ``dedupe_key`` claims the work first."""
    if dedupe_key:
        existing = Job.objects.filter(organization=organization, dedupe_key=dedupe_key).exclude(
            status=JobStatus.FAILED).first()
        if existing is not None:
            raise DuplicateJob(existing)
    try:
        with transaction.atomic():
            return Job.objects.create(organization=organization, kind=kind, created_by=user,
                                      params=params or {}, dedupe_key=dedupe_key)
    except IntegrityError:
        existing = Job.objects.filter(organization=organization, dedupe_key=dedupe_key).exclude(
            status=JobStatus.FAILED).first()
        if existing is None:
            raise
        raise DuplicateJob(existing) from None


def job_enqueue(*, job: Job, task: Any) -> None:
    """Send ``task`` for ``job`` once the surrounding transaction commits.

    If the broker is down the job stays queued with a clear message; the beat task
    ``jobs_requeue_stale`` sends it again when the broker is back, so nothing is lost.
    """

    def send() -> None:
        try:
            task.delay(organization_id=job.organization_id, job_id=job.pk)
        except OperationalError:
            log.warning("broker unavailable; job %s stays queued", job.pk)
            Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).update(
                message=WORKER_UNAVAILABLE)

    transaction.on_commit(send)


def job_progress(job_id: int, percent: int, message: str = "") -> None:
    percent = max(0, min(100, int(percent)))
    cache.set(_cache_key(job_id), {"progress": percent, "message": message}, timeout=3600)


def job_live_state(job: Job) -> dict[str, Any]:
    """Progress for the UI: the cache while running, the row otherwise."""
    if job.status == JobStatus.RUNNING:
        live = cache.get(_cache_key(job.pk))
        if live:
            return {"status": job.status, **live}
    return {"status": job.status, "progress": job.progress, "message": job.message}


def job_start(job_id: int) -> bool:
    """Claim a queued job (conditional UPDATE): False if another worker already has it."""
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING, started_at=timezone.now(), progress=0, message="Started")
    if claimed:
        Job.objects.filter(pk=job_id).update(attempts=F("attempts") + 1)
        job_progress(job_id, 0, "Started")
    return bool(claimed)


def job_succeed(job_id: int, *, result: dict[str, Any] | None = None, message: str = "Done",
                result_url: str = "") -> None:
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.SUCCEEDED, progress=100, message=message, result=result or {},
        finished_at=timezone.now(), result_url=result_url)
    cache.delete(_cache_key(job_id))


def job_fail(job_id: int, *, message: str, errors: list[dict[str, Any]] | None = None,
             error_count: int | None = None) -> None:
    errors = errors or []
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, message=message[:300], errors=errors[:MAX_ERRORS_KEPT],
        error_count=error_count if error_count is not None else len(errors),
        finished_at=timezone.now())
    cache.delete(_cache_key(job_id))
