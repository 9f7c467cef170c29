"""Dropping an import's partition of the usage table (PostgreSQL) and its columnar copy with
the import."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.db.models.signals import post_delete, pre_delete

from . import columnar
from .importing import usage_partition_drop
from .models import DataImport


def _drop_usage_partition(sender: type[DataImport], instance: DataImport, **kwargs: Any) -> None:
    """An import's rows are its partition: dropping the table removes them at once (the ORM's
    cascade then finds none to delete) and leaves no empty table behind. Runs in the deleting
    transaction, so a rollback brings the rows back."""
    if connection.vendor != "postgresql" or instance.pk is None:
        return
    with connection.cursor() as cursor:
        usage_partition_drop(cursor, instance.pk)


def _remove_usage_cache(sender: type[DataImport], instance: DataImport, **kwargs: Any) -> None:
    """The import's columnar copy goes with it, once the deletion is committed."""
    organization_id, import_id = instance.organization_id, instance.pk
    if import_id is None:
        return
    transaction.on_commit(
        lambda: columnar.files_remove(organization_id=organization_id, import_id=import_id)
    )


def connect_receivers() -> None:
    pre_delete.connect(
        _drop_usage_partition, sender=DataImport, dispatch_uid="savings.drop_usage_partition"
    )
    post_delete.connect(
        _remove_usage_cache, sender=DataImport, dispatch_uid="savings.remove_usage_cache"
    )
