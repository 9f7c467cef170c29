"""Background jobs: create, enqueue, report progress, finish.

Live progress goes to the cache so that the page polling it sees the figure while the work's own
transaction is still open; the row is updated at the start and the end.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError

from .models import Job, JobStatus, Organization, User
from .versioning import data_version_bump

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


def job_create(
    *,
    organization: Organization,
    kind: str,
    user: User | None,
    params: dict[str, Any] | None = None,
    dedupe_key: str = "",
) -> Job:
    """Create a queued job. A live job with the same ``dedupe_key`` claims the work first."""
    if dedupe_key:
        existing = (
            Job.objects.filter(organization=organization, dedupe_key=dedupe_key)
            .exclude(status=JobStatus.FAILED)
            .first()
        )
        if existing is not None:
            raise DuplicateJob(existing)
    try:
        with transaction.atomic():
            return Job.objects.create(
                organization=organization,
                kind=kind,
                created_by=user,
                params=params or {},
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        existing = (
            Job.objects.filter(organization=organization, dedupe_key=dedupe_key)
            .exclude(status=JobStatus.FAILED)
            .first()
        )
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
                message=WORKER_UNAVAILABLE
            )

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


# --------------------------------------------------------------------------------------------
# The lease: which live worker runs a job
#
# A worker holds a PostgreSQL session advisory lock on the job for as long as it runs it. The
# lock lives and dies with the worker's database session, so it is a lease that needs no
# heartbeat: when the worker is killed (SIGKILL, OOM, a lost machine) its connection closes and
# PostgreSQL frees the lock at once. Hence:
#
# * a job that is RUNNING while nobody holds its lock has a dead worker, and a redelivered
#   message (acks_late + reject_on_worker_lost; Redis hands an unacked message out again after
#   the visibility timeout) or ``jobs_requeue_stale`` may take it over;
# * a job whose lock is held is being run by a live worker, and nobody else touches it, so two
#   live workers never both run a job, however early a message comes back.
#
# The lock is taken *before* the conditional UPDATE that marks the job RUNNING, so a RUNNING job
# always has its holder. SQLite (tests, the demo) has no such locks: there the claim is the
# conditional UPDATE alone and a job left RUNNING is failed by ``jobs_requeue_stale`` after
# ``STALE_RUNNING_WITHOUT_LEASE``.

MAX_ATTEMPTS = 3
_LEASE_CLASS = 0x4A4F42  # "JOB": the first key of the two-key advisory lock, namespaces it
WORKER_LOST = (
    "The worker stopped while running this job; nothing of that attempt was kept. "
    "It was started again."
)
GAVE_UP = (
    "The worker stopped while running this job {attempts} times; nothing was applied. "
    "The file or the calculation may be too large; contact support."
)


def lease_supported() -> bool:
    return connection.vendor == "postgresql"


def _lease_key(job_id: int) -> int:
    return int(job_id) % 2_147_483_647


def job_lease_acquire(job_id: int) -> bool:
    """Try to take the job's lease for this database session (never waits)."""
    if not lease_supported():
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_LEASE_CLASS, _lease_key(job_id)])
        return bool(cursor.fetchone()[0])


def job_lease_release(job_id: int) -> None:
    if not lease_supported() or connection.connection is None:
        return
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [_LEASE_CLASS, _lease_key(job_id)])
    except DatabaseError:
        # The session is gone (the connection dropped): so is the lock.
        log.warning("could not release the lease of job %s; its session is gone", job_id)


def job_lease_is_held(job_id: int) -> bool:
    """True if some live session holds the job's lease (PostgreSQL only)."""
    if not lease_supported():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = %s AND objid = %s AND objsubid = 2 AND granted)",
            [_LEASE_CLASS, _lease_key(job_id)],
        )
        return bool(cursor.fetchone()[0])


def job_start(job_id: int) -> bool:
    """Claim a job for this worker: False if a live worker has it or it is finished.

    Takes the lease, then claims a QUEUED job with a conditional UPDATE. A RUNNING job whose
    lease was free has lost its worker: it is taken over (a new attempt), or failed with a clear
    message after :data:`MAX_ATTEMPTS`. On True the caller holds the lease and must call
    :func:`job_lease_release` when done.
    """
    if not job_lease_acquire(job_id):
        return False
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=JobStatus.QUEUED).update(
        status=JobStatus.RUNNING,
        started_at=now,
        progress=0,
        message="Started",
        attempts=F("attempts") + 1,
    )
    if not claimed and lease_supported():
        orphan = Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).values("attempts").first()
        if orphan is not None:
            if orphan["attempts"] >= MAX_ATTEMPTS:
                job_fail(job_id, message=GAVE_UP.format(attempts=orphan["attempts"]))
            else:
                claimed = Job.objects.filter(
                    pk=job_id, status=JobStatus.RUNNING, attempts=orphan["attempts"]
                ).update(
                    started_at=now, progress=0, message=WORKER_LOST, attempts=F("attempts") + 1
                )
                if claimed:
                    log.warning(
                        "job %s: its worker died; taken over (attempt %s)",
                        job_id,
                        orphan["attempts"] + 1,
                    )
    if not claimed:
        job_lease_release(job_id)
        return False
    job_progress(job_id, 0, "Started")
    return True


def job_succeed(
    job_id: int,
    *,
    result: dict[str, Any] | None = None,
    message: str = "Done",
    result_url: str = "",
) -> None:
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.SUCCEEDED,
        progress=100,
        message=message,
        result=result or {},
        finished_at=timezone.now(),
        result_url=result_url,
    )
    cache.delete(_cache_key(job_id))
    # Every import and recalculation finishes here, including those that wrote in bulk
    # (COPY, bulk_create, update) without signals: their organization's figures changed.
    for organization_id in Job.objects.filter(pk=job_id).values_list("organization_id", flat=True):
        data_version_bump(organization_id)


def job_fail(
    job_id: int,
    *,
    message: str,
    errors: list[dict[str, Any]] | None = None,
    error_count: int | None = None,
) -> None:
    errors = errors or []
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED,
        message=message[:300],
        errors=errors[:MAX_ERRORS_KEPT],
        error_count=error_count if error_count is not None else len(errors),
        finished_at=timezone.now(),
    )
    cache.delete(_cache_key(job_id))
