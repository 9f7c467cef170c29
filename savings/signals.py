"""Dropping an import's partition of the usage table with the import (PostgreSQL)."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models.signals import pre_delete

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


def connect_receivers() -> None:
    pre_delete.connect(_drop_usage_partition, sender=DataImport,
                       dispatch_uid="savings.drop_usage_partition")
