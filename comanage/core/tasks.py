"""The Celery task base: tasks take ids, re-enter the tenant scope and record who acted."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import shared_task
from django.utils import timezone
from django_scopes import scope, scopes_disabled

from .audit import acting_as
from .jobs import job_fail, job_start
from .models import Job, JobStatus, Organization

log = logging.getLogger(__name__)


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
            with scope(organization=organization):
                if job_id is None:
                    return func(organization=organization, **kwargs)
                if not job_start(job_id):
                    log.info("job %s already claimed; skipping duplicate delivery", job_id)
                    return None
                job = Job.objects.select_related("created_by").get(pk=job_id)
                try:
                    with acting_as(job.created_by):
                        return func(organization=organization, job=job, **kwargs)
                except Exception as exc:
                    log.exception("job %s failed", job_id)
                    job_fail(job_id, message=f"Unexpected error: {type(exc).__name__}. "
                                             "Nothing was changed; try again or contact support.")
                    raise

        return run

    return decorator


@shared_task(name="comanage.core.tasks.jobs_requeue_stale")
def jobs_requeue_stale() -> int:
    """Send again jobs still queued after a broker outage, and fail jobs whose worker died."""
    from . import job_registry

    now = timezone.now()
    sent = 0
    with scopes_disabled():
        stale_queued = Job.objects.filter(status=JobStatus.QUEUED,
                                          created_at__lt=now - timedelta(minutes=2))
        for job in stale_queued:
            task = job_registry.task_for(job.kind)
            if task is not None:
                task.delay(organization_id=job.organization_id, job_id=job.pk)
                sent += 1
        Job.objects.filter(status=JobStatus.RUNNING,
                           started_at__lt=now - timedelta(hours=2)).update(
            status=JobStatus.FAILED, finished_at=now,
            message="The worker stopped while running this job; nothing was applied. Run it again.")
    return sent
