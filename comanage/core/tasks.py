"""The Celery task base: tasks take ids, re-enter the tenant scope and record who acted."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, cast

from celery import shared_task
from django.db import DatabaseError, InterfaceError, connection
from django.db import OperationalError as DbOperationalError
from django.db.models import Q
from django.utils import timezone
from django_scopes import scope, scopes_disabled
from kombu.exceptions import OperationalError

from .audit import acting_as
from .jobs import (
    GAVE_UP,
    MAX_ATTEMPTS,
    WORKER_LOST,
    job_fail,
    job_lease_acquire,
    job_lease_release,
    job_start,
    lease_supported,
)
from .models import Job, JobStatus, Organization
from .tenancy import organization_zone

log = logging.getLogger(__name__)


class _Driver(Protocol):
    """The DB-API module under a connection (psycopg, sqlite3): its own error classes."""

    OperationalError: type[Exception]
    InterfaceError: type[Exception]


class _DriverConnection(Protocol):
    # Every backend's wrapper names its driver module ``Database``; django-stubs declares it
    # on each backend's wrapper, not on ``BaseDatabaseWrapper``.
    Database: _Driver


STALE_RUNNING_WITHOUT_LEASE = timedelta(hours=2)
DATABASE_LOST = (
    "The connection to the database was lost while this job ran; nothing was applied. Run it again."
)


def tenant_task(**task_options: Any) -> Callable:
    """Declare a task that runs inside one organization's scope.

    The task is called as ``task.delay(organization_id=..., job_id=..., **ids)``. With a
    ``job_id`` the job is claimed first (a conditional UPDATE, so a redelivered message does not
    run the work twice), and an unexpected exception marks it failed. The wrapped function gets
    ``organization`` and, if given, ``job`` as keyword arguments.
    """

    def decorator(func: Callable) -> Callable:
        @shared_task(name=f"{func.__module__}.{func.__name__}", **task_options)
        @functools.wraps(func)
        def run(*, organization_id: int, job_id: int | None = None, **kwargs: Any) -> Any:
            organization = Organization.objects.get(pk=organization_id)
            # The organization's time zone, as on its pages (PDF dates, e-mails).
            zone = organization_zone(organization)
            with scope(organization=organization), timezone.override(zone):
                if job_id is None:
                    return func(organization=organization, **kwargs)
                if not job_start(job_id):
                    log.info(
                        "job %s is finished or a live worker has it; skipping this delivery", job_id
                    )
                    return None
                try:
                    job = Job.objects.select_related("created_by").get(pk=job_id)
                    with acting_as(job.created_by):
                        return func(organization=organization, job=job, **kwargs)
                except Exception as exc:
                    log.exception("job %s failed", job_id)
                    _fail_after_error(job_id, exc)
                    raise
                finally:
                    job_lease_release(job_id)

        return run

    return decorator


def _fail_after_error(job_id: int, exc: Exception) -> None:
    """Mark the job failed, on a fresh connection if the error broke the old one."""
    # Code that talks to the driver directly (COPY through ``cursor.cursor``) raises the
    # driver's own errors, not Django's wrappers: recognise both.
    driver = cast("_DriverConnection", connection).Database
    lost = (DbOperationalError, InterfaceError, driver.OperationalError, driver.InterfaceError)
    if isinstance(exc, lost):
        message = DATABASE_LOST
    else:
        message = (
            f"Unexpected error: {type(exc).__name__}. Nothing was changed; try again or "
            "contact support."
        )
    for attempt in range(2):
        try:
            if connection.in_atomic_block:
                job_fail(job_id, message=message)
            else:
                connection.close_if_unusable_or_obsolete()
                job_fail(job_id, message=message)
            return
        except DatabaseError:
            if attempt:
                # The row stays RUNNING without a lease: jobs_requeue_stale picks it up.
                log.exception("job %s: could not record the failure", job_id)
            else:
                connection.close()


@shared_task(name="comanage.core.tasks.jobs_requeue_stale")
def jobs_requeue_stale(*, queued_for: float = 120.0) -> int:
    """Recover jobs that an outage left behind; returns how many were sent again.

    * QUEUED for more than ``queued_for`` seconds: the broker was down when they were sent
      (or the message was lost): send them again. The claim in ``job_start`` makes a duplicate
      delivery harmless.
    * RUNNING with nobody holding the lease (PostgreSQL): their worker died. Back to QUEUED and
      sent again, or failed with a clear message after ``MAX_ATTEMPTS``.
    * RUNNING for more than ``STALE_RUNNING_WITHOUT_LEASE`` where there are no leases (SQLite):
      failed with a clear message.
    """
    from . import job_registry

    now = timezone.now()
    sent = 0
    revived: list[int] = []
    with scopes_disabled():
        if lease_supported():
            for job_id, attempts in Job.objects.filter(status=JobStatus.RUNNING).values_list(
                "pk", "attempts"
            ):
                if not job_lease_acquire(job_id):
                    continue  # a live worker runs it
                try:
                    if attempts >= MAX_ATTEMPTS:
                        job_fail(job_id, message=GAVE_UP.format(attempts=attempts))
                    else:
                        if Job.objects.filter(
                            pk=job_id, status=JobStatus.RUNNING, attempts=attempts
                        ).update(status=JobStatus.QUEUED, message=WORKER_LOST):
                            revived.append(job_id)
                finally:
                    job_lease_release(job_id)
        else:
            Job.objects.filter(
                status=JobStatus.RUNNING, started_at__lt=now - STALE_RUNNING_WITHOUT_LEASE
            ).update(
                status=JobStatus.FAILED,
                finished_at=now,
                message="The worker stopped while running this job; nothing was applied. "
                "Run it again.",
            )
        stale_queued = Job.objects.filter(
            Q(created_at__lt=now - timedelta(seconds=queued_for)) | Q(pk__in=revived),
            status=JobStatus.QUEUED,
        )
        for job in stale_queued.order_by("created_at"):
            task = job_registry.task_for(job.kind)
            if task is None:
                log.error("job %s: no task is registered for kind %r", job.pk, job.kind)
                continue
            try:
                task.delay(organization_id=job.organization_id, job_id=job.pk)
            except OperationalError:
                log.warning(
                    "broker still unavailable; %s job(s) stay queued", stale_queued.count() - sent
                )
                break
            sent += 1
    return sent
