"""Celery tasks: thin wrappers that take ids and run the services inside the tenant scope."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.utils import timezone

from comanage.core.models import Organization
from comanage.core.tasks import tenant_task


@tenant_task()
def compliance_scan_organization(*, organization: Organization) -> dict[str, int]:
    from .services import compliance_scan

    result = compliance_scan(organization=organization, today=timezone.localdate())
    return {
        "raised": len(result.raised),
        "updated": result.updated,
        "cleared": result.cleared,
        "emails": result.emails,
    }


@shared_task(name="agreements.tasks.compliance_scan_all")
def compliance_scan_all() -> int:
    """Daily (beat): one scan per organization, each in its own scope and task."""
    ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))
    for organization_id in ids:
        compliance_scan_organization.delay(organization_id=organization_id)
    return len(ids)


@tenant_task()
def roster_import_task(*, organization: Organization, job: Any) -> None:
    """Apply a confirmed roster (whole or not at all); a refusal's problems go to the job."""
    from comanage.core.master_imports import master_import_run

    from .models import RosterImport
    from .services import roster_import_apply

    roster_import = RosterImport.objects.get(pk=job.params["import_id"])
    master_import_run(
        instance=roster_import,
        job=job,
        apply=lambda *, instance, user: roster_import_apply(roster_import=instance, user=user),
        event="roster.imported",
        result_url=f"/o/{organization.slug}/physicians/roster/{roster_import.pk}/",
    )


def _register() -> None:
    from comanage.core import job_registry

    from .services import ROSTER_JOB_KIND

    job_registry.register(ROSTER_JOB_KIND, roster_import_task)


_register()
