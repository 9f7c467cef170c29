"""Celery tasks: thin wrappers that take ids and run the services inside the tenant scope."""

from __future__ import annotations

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
