"""Background work of the indicators app: applying a case-file import (thin: the service does
the work; the task claims the job, reports progress and records the outcome)."""

from __future__ import annotations

from django.urls import reverse

from comanage.core import job_registry
from comanage.core.audit import event_record
from comanage.core.jobs import job_fail, job_progress, job_succeed
from comanage.core.tasks import tenant_task

from .casefile import CaseFileRefused
from .models import CaseImport, ImportStatus
from .services import case_import_apply

IMPORT_JOB_KIND = "indicator case import"


@tenant_task(max_retries=0)
def case_import_run(*, organization, job) -> None:
    case_import = CaseImport.objects.select_related("agreement", "programme_year").get(
        pk=job.params["case_import"]
    )
    try:
        outcome = case_import_apply(
            case_import=case_import,
            user=job.created_by,
            progress=lambda percent, message: job_progress(job.pk, percent, message),
        )
    except CaseFileRefused as refused:
        CaseImport.objects.filter(pk=case_import.pk).update(status=ImportStatus.REFUSED)
        event_record(
            organization=organization,
            name="import.refused",
            actor=job.created_by,
            obj=case_import,
            summary=f"{case_import.original_name}: refused",
        )
        problems = refused.problems
        job_fail(
            job.pk,
            message=f"The file was refused: {problems.total} problem"
            f"{'s' if problems.total != 1 else ''}. Nothing was stored.",
            errors=list(problems.items),
            error_count=problems.total,
        )
        return
    url = reverse(
        "indicator_import_detail",
        kwargs={
            "org_slug": organization.slug,
            "agreement_pk": case_import.agreement_id,
            "import_pk": case_import.pk,
        },
    )
    job_succeed(
        job.pk,
        message=f"{outcome.case_import.row_count:,} cases evaluated against "
        f"{len(outcome.results)} indicators.",
        result={
            "case_import": case_import.pk,
            "results": [r.pk for r in outcome.results],
            "timings": dict(outcome.timings),
        },
        result_url=url,
    )


job_registry.register(IMPORT_JOB_KIND, case_import_run)


@tenant_task()
def result_import_task(*, organization, job) -> None:
    """Apply a confirmed file of aggregate results (whole or not at all); a refusal's problems
    go to the job."""
    from comanage.core.master_imports import master_import_run

    from .aggregate_import import result_import_apply
    from .models import ResultImport

    result_import = ResultImport.objects.get(pk=job.params["import_id"])
    master_import_run(
        instance=result_import,
        job=job,
        apply=lambda *, instance, user: result_import_apply(result_import=instance, user=user),
        event="indicator.results_imported",
        result_url=reverse(
            "indicator_result_import",
            kwargs={"org_slug": organization.slug, "import_pk": result_import.pk},
        ),
    )


def _register_result_import() -> None:
    from .aggregate_import import JOB_KIND

    job_registry.register(JOB_KIND, result_import_task)


_register_result_import()
