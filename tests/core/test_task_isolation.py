"""Every task is run with another organization's ids: it finds nothing of theirs and changes
nothing of theirs (the task equivalent of the outsider's 404)."""

import pytest
from django_scopes import scope

from agreements.models import ComplianceFlag
from agreements.tasks import compliance_scan_organization
from comanage.core.jobs import job_create
from comanage.core.models import Job, JobStatus
from indicators.tasks import case_import_run
from savings.tasks import data_import_task, savings_calculation_task

JOB_TASKS = [
    ("savings.import", data_import_task),
    ("savings.calculation", savings_calculation_task),
    ("indicator case import", case_import_run),
]


@pytest.mark.parametrize(("kind", "task"), JOB_TASKS)
def test_a_job_task_given_another_organization_leaves_the_job_alone(world, kind, task):
    with scope(organization=world.org):
        job = job_create(
            organization=world.org,
            kind=kind,
            user=world.users["administrator"],
            params={"note": "belongs to riverside"},
        )
    task.delay(organization_id=world.other_org.pk, job_id=job.pk)
    with scope(organization=world.org):
        untouched = Job.objects.get(pk=job.pk)
    assert untouched.status == JobStatus.QUEUED
    assert untouched.attempts == 0
    assert untouched.started_at is None


def test_the_compliance_scan_of_one_organization_touches_no_other(world):
    from tests.factories import AgreementFactory

    AgreementFactory(organization=world.org, name="Riverside agreement")
    with scope(organization=world.org):
        before = list(ComplianceFlag.objects.values_list("pk", "resolved_at"))
    compliance_scan_organization.delay(organization_id=world.other_org.pk)
    with scope(organization=world.org):
        after = list(ComplianceFlag.objects.values_list("pk", "resolved_at"))
    with scope(organization=world.other_org):
        theirs = ComplianceFlag.objects.count()
    assert after == before
    assert theirs == 0
