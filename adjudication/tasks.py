"""Celery tasks: thin wrappers that take ids, re-enter the tenant scope and call the services."""

from __future__ import annotations

from agreements.models import ProgrammeYear
from comanage.core import job_registry
from comanage.core.jobs import DuplicateJob, job_fail, job_progress, job_succeed
from comanage.core.models import Job
from comanage.core.tasks import tenant_task

from .models import AdjudicationReport


@tenant_task(acks_late=True)
def adjudication_run_task(*, organization, job, **_kwargs):
    from django.urls import reverse

    from . import services

    programme_year = ProgrammeYear.objects.select_related("agreement").get(
        pk=job.params["programme_year_id"]
    )
    job_progress(job.pk, 10, "Gathering the frozen terms and the year's data")
    try:
        payload = services.calculation_gather(programme_year=programme_year)
    except services.AdjudicationError as exc:
        job_fail(job.pk, message=f"Nothing was recorded: {exc}")
        return None
    job_progress(job.pk, 60, "Storing the figures")
    outcome = services.calculation_record(
        programme_year=programme_year, payload=payload, user=job.created_by
    )
    if outcome.created and outcome.report is not None:
        job_progress(job.pk, 80, "Rendering the report PDF")
        services.report_render(report=outcome.report)
    url = reverse(
        "adjudication_run_detail", kwargs={"org_slug": organization.slug, "run_id": outcome.run.pk}
    )
    message = (
        f"Version {outcome.run.version} recorded."
        if outcome.created
        else f"Inputs unchanged: version {outcome.run.version} already has these figures."
    )
    job_succeed(
        job.pk,
        result={
            "run_id": outcome.run.pk,
            "created": outcome.created,
            "hash": outcome.run.calculation_hash,
        },
        message=message,
        result_url=url,
    )
    # The dedupe key only claims the work while it runs: a later rerun may start again.
    Job.objects.filter(pk=job.pk).update(dedupe_key="")
    return outcome.run.pk


@tenant_task(autoretry_for=(ConnectionError,), max_retries=3, retry_backoff=True)
def report_render_task(*, organization, report_id: int):
    from . import services

    report = AdjudicationReport.objects.get(pk=report_id)
    services.report_render(report=report)
    return report.pk


job_registry.register("adjudication run", adjudication_run_task)
__all__ = ["DuplicateJob", "adjudication_run_task", "report_render_task"]
