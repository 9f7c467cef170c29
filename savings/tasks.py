"""Celery tasks of the savings app: thin wrappers that take ids and call the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from comanage.core import job_registry
from comanage.core.audit import event_record
from comanage.core.jobs import job_fail, job_progress, job_succeed
from comanage.core.money import format_money
from comanage.core.tasks import tenant_task

from . import columnar, engine, services
from .models import DataImport


@tenant_task()
def data_import_task(*, organization: Any, job: Any) -> None:
    data_import = DataImport.objects.get(pk=job.params["data_import_id"])
    job_progress(job.pk, 1, "Reading the file")
    try:
        data_import = services.data_import_apply(data_import=data_import, job_id=job.pk)
    except services.ImportRefused as refused:
        services.data_import_mark_failed(data_import=data_import)
        event_record(
            organization=organization,
            name="import.refused",
            actor=job.created_by,
            obj=data_import,
            summary=f"{data_import}: refused",
        )
        job_fail(
            job.pk,
            message=refused.message,
            errors=refused.problems.items,
            error_count=refused.problems.total,
        )
        return
    except Exception:
        services.data_import_mark_failed(data_import=data_import)
        raise
    job_succeed(
        job.pk,
        message=f"{data_import.row_count} rows applied (version {data_import.version}).",
        result={"data_import_id": data_import.pk, "rows": data_import.row_count},
        result_url=f"/o/{organization.slug}/agreements/{data_import.agreement_id}"
        f"/savings/imports/{data_import.pk}/",
    )
    # Usage is read by every calculation and what-if: prepared here, once, not by the first.
    columnar.prepare_after_apply(data_import)


@tenant_task()
def data_import_head_task(*, organization: Any, job: Any) -> None:
    """An Excel workbook's sheets and first rows, for the mapping step."""
    data_import = DataImport.objects.get(pk=job.params["data_import_id"])
    data_import = services.data_import_head_read(data_import=data_import)
    job_succeed(
        job.pk,
        message="The workbook's first rows were read.",
        result={"data_import_id": data_import.pk},
    )


@tenant_task()
def savings_calculation_task(*, organization: Any, job: Any) -> None:
    from agreements.models import ProgrammeYear

    programme_year = ProgrammeYear.objects.get(pk=job.params["programme_year_id"])
    as_of = job.params.get("as_of")
    try:
        calculation = services.savings_calculation_run(
            programme_year=programme_year,
            user=job.created_by,
            kind=job.params["kind"],
            overrides=job.params.get("overrides") or None,
            as_of=dt.date.fromisoformat(as_of) if as_of else None,
            job_id=job.pk,
        )
    except (engine.SavingsInputError, services.ValidationError) as exc:
        message = "; ".join(exc.messages) if hasattr(exc, "messages") else str(exc)
        job_fail(
            job.pk,
            message=f"The year cannot be calculated: {message}"[:300],
            errors=[{"row": None, "column": "", "message": message}],
            error_count=1,
        )
        return
    job_succeed(
        job.pk,
        message=f"Gross savings {format_money(calculation.gross_savings)}, "
        f"paid {format_money(calculation.amount_paid)}.",
        result={"calculation_id": calculation.pk},
        result_url=f"/o/{organization.slug}/agreements/{calculation.agreement_id}"
        f"/savings/calculations/{calculation.pk}/",
    )


job_registry.register(services.IMPORT_JOB_KIND, data_import_task)
job_registry.register(services.CALCULATION_JOB_KIND, savings_calculation_task)
job_registry.register(services.HEAD_JOB_KIND, data_import_head_task)


@tenant_task()
def item_import_task(*, organization: Any, job: Any) -> None:
    """Apply a confirmed item master (whole or not at all)."""
    from comanage.core.master_imports import master_import_run

    from .models import ItemImport

    item_import = ItemImport.objects.get(pk=job.params["import_id"])
    master_import_run(
        instance=item_import,
        job=job,
        apply=lambda *, instance, user: services.item_import_apply(item_import=instance, user=user),
        event="items.imported",
        result_url=f"/o/{organization.slug}/savings/items/imports/{item_import.pk}/",
    )


job_registry.register(services.ITEM_IMPORT_JOB_KIND, item_import_task)
