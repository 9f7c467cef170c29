"""A columnar copy of an applied usage import: what the engine reads on every calculation.

An import is immutable once applied, yet every calculation (and every what-if scenario) read
the base, prior and current years' rows back out of the database and parsed them. The first
read of an applied import now writes its typed columns (dictionary-encoded codes, dates as
ordinals, amounts as exact integers at 10**4: the engine's own form, never a float) to an
Arrow IPC file; later reads memory-map it.

* Where: ``MEDIA_ROOT/var/org-<organization>/usage/import-<id>-<identity>.arrow`` with its
  SHA-256 beside it (``.sha256``). The identity hashes what makes the rows these rows (the
  organization, the import, its file's checksum, row count and upload time), so a database
  restored or recreated with the same ids never meets a stale file.
* Verified on every read: the SHA-256 of the whole file, and the organization and import ids
  written into the file's own metadata (a file copied from another tenant's directory is
  refused). A missing, corrupted or foreign file is rebuilt from the database.
* Only applied imports (their rows no longer change); written atomically (temporary file,
  then rename), so a reader sees a whole file or none.
* Deleting an import removes its files (``savings.signals``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import pyarrow as pa
from django.conf import settings

from .models import DataImport, ImportStatus

logger = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when the stored columns change: older files are then ignored


def enabled() -> bool:
    return bool(getattr(settings, "SAVINGS_USAGE_CACHE", True))


def directory(organization_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "var" / f"org-{int(organization_id)}" / "usage"


def _identity(data_import: DataImport) -> str:
    uploaded = data_import.uploaded_at.isoformat() if data_import.uploaded_at else ""
    key = json.dumps(
        [
            CACHE_FORMAT,
            data_import.organization_id,
            data_import.pk,
            data_import.sha256,
            data_import.row_count,
            uploaded,
        ]
    )
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def path_of(data_import: DataImport) -> Path:
    return (
        directory(data_import.organization_id)
        / f"import-{int(data_import.pk)}-{_identity(data_import)}.arrow"
    )


def _digest_path(path: Path) -> Path:
    return path.with_suffix(".sha256")


def cacheable(data_import: DataImport) -> bool:
    return enabled() and data_import.pk is not None and data_import.status == ImportStatus.APPLIED


def _metadata(data_import: DataImport) -> dict[bytes, bytes]:
    return {
        b"comanage.organization": str(data_import.organization_id).encode(),
        b"comanage.import": str(data_import.pk).encode(),
        b"comanage.identity": _identity(data_import).encode(),
    }


def table_read(data_import: DataImport) -> pa.Table | None:
    """The import's stored columns, or ``None`` when there is no sound file for it."""
    path = path_of(data_import)
    try:
        expected = _digest_path(path).read_text().strip()
        source = pa.memory_map(str(path), "r")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        logger.warning("usage cache %s unreadable; rebuilding it", path, exc_info=True)
        return None
    try:
        buffer = source.read_buffer()
        if hashlib.sha256(memoryview(buffer)).hexdigest() != expected:
            logger.warning("usage cache %s does not match its SHA-256; rebuilding it", path)
            return None
        table = pa.ipc.open_file(buffer).read_all()
    except (pa.ArrowException, OSError, ValueError):
        logger.warning("usage cache %s unreadable; rebuilding it", path, exc_info=True)
        return None
    metadata = table.schema.metadata or {}
    if any(metadata.get(k) != v for k, v in _metadata(data_import).items()):
        logger.warning("usage cache %s belongs to another import; rebuilding it", path)
        return None
    if table.num_rows != data_import.row_count:
        logger.warning(
            "usage cache %s has %s rows, the import %s; rebuilding it",
            path,
            table.num_rows,
            data_import.row_count,
        )
        return None
    return table


def _atomic_write(path: Path, data: bytes | memoryview) -> None:
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def table_write(data_import: DataImport, table: pa.Table) -> Path | None:
    """Store ``table`` as the import's columns. A failure (disk full, permissions) is logged
    and costs only speed: the next read goes to the database again."""
    path = path_of(data_import)
    table = table.combine_chunks().replace_schema_metadata(_metadata(data_import))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=max(table.num_rows, 1))
        data = sink.getvalue()
        digest = hashlib.sha256(memoryview(data)).hexdigest()
        _atomic_write(path, memoryview(data))
        _atomic_write(_digest_path(path), f"{digest}\n".encode())
    except OSError:
        logger.warning("usage cache %s could not be written", path, exc_info=True)
        return None
    return path


def files_remove(*, organization_id: int, import_id: int) -> None:
    """Remove every stored copy of one import (any identity)."""
    folder = directory(organization_id)
    for pattern in (f"import-{int(import_id)}-*.arrow", f"import-{int(import_id)}-*.sha256"):
        for found in folder.glob(pattern):
            found.unlink(missing_ok=True)
