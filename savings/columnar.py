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

Beside it, the import **prepared** for the engine (``engine.PreparedUsage``: the file parsed,
its one-case-many-rows check passed, reduced to cases and to exact totals per case type and
item; ``import-<id>-<identity>-prepared.arrow``, same SHA-256, tenant and atomic-write rules).
A year's calculation and every what-if read only this one (half the rows file's size, no text).
Each process keeps the prepared imports it used last in memory (:func:`prepared_of`; at most
``SAVINGS_PREPARED_MEMORY_MB``, 512 MiB by default, about 31 MiB per million rows), keyed by the
import's identity and checked on every use against the file's inode, size, modification and
change times and its recorded SHA-256: the SHA-256 of the bytes is computed once per process
per file and again whenever the file or its digest changes in any way, and a file that is
gone (its import deleted) is never served from memory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
from django.conf import settings

from . import engine
from .models import DataImport, ImportKind, ImportStatus

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
    """Remove every stored copy of one import (any identity), and this process's memory of
    it (other processes find the file gone on their next use)."""
    _forget(organization_id=organization_id, import_id=import_id)
    folder = directory(organization_id)
    for pattern in (f"import-{int(import_id)}-*.arrow", f"import-{int(import_id)}-*.sha256"):
        for found in folder.glob(pattern):
            found.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# The prepared form: what a calculation reads


def prepared_path(data_import: DataImport) -> Path:
    return (
        directory(data_import.organization_id)
        / f"import-{int(data_import.pk)}-{_identity(data_import)}-prepared.arrow"
    )


_HEADER = b"comanage.prepared"
Signature = tuple[int, int, int, int, int, str]


def _signature(status: os.stat_result, digest: str) -> Signature:
    return (
        status.st_dev,
        status.st_ino,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
        digest,
    )


def _signature_now(path: Path) -> Signature | None:
    try:
        digest = _digest_path(path).read_text().strip()
        return _signature(os.stat(path), digest)
    except OSError:
        return None


def _prepared_table(data_import: DataImport, prepared: engine.PreparedUsage) -> pa.Table:
    """One row; each array a list column (arrays of different lengths in one file)."""
    columns = {}
    for name, values in prepared.arrays().items():
        offsets = pa.array([0, len(values)], pa.int64())
        columns[name] = pa.LargeListArray.from_arrays(offsets, pa.array(values))
    metadata = {**_metadata(data_import), _HEADER: json.dumps(prepared.header()).encode()}
    return pa.table(columns).replace_schema_metadata(metadata)


def prepared_write(data_import: DataImport, prepared: engine.PreparedUsage) -> Signature | None:
    """Store ``prepared`` for the import; its signature, or ``None`` when it was not stored
    (a file beyond 64-bit amounts, or disk full: the next use prepares it again)."""
    if not prepared.persistable:
        return None
    path = prepared_path(data_import)
    try:
        table = _prepared_table(data_import, prepared)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        data = sink.getvalue()
        digest = hashlib.sha256(memoryview(data)).hexdigest()
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(path, memoryview(data))
        _atomic_write(_digest_path(path), f"{digest}\n".encode())
        return _signature(os.stat(path), digest)
    except OSError:
        logger.warning("prepared usage %s could not be written", path, exc_info=True)
        return None


def prepared_read(data_import: DataImport) -> tuple[engine.PreparedUsage, Signature] | None:
    """The import's prepared form and the signature of the file it was read from, or
    ``None`` when there is no sound file (missing, not matching its SHA-256, another tenant's
    or import's, another version, or arrays that do not fit together)."""
    path = prepared_path(data_import)
    try:
        expected = _digest_path(path).read_text().strip()
        with open(path, "rb") as handle:  # read, not mapped: verified bytes cannot change
            status = os.fstat(handle.fileno())
            data = handle.read()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError:
        logger.warning("prepared usage %s unreadable; rebuilding it", path, exc_info=True)
        return None
    if hashlib.sha256(data).hexdigest() != expected:
        logger.warning("prepared usage %s does not match its SHA-256; rebuilding it", path)
        return None
    try:
        table = pa.ipc.open_file(pa.py_buffer(data)).read_all()
        metadata = table.schema.metadata or {}
        if any(metadata.get(k) != v for k, v in _metadata(data_import).items()):
            logger.warning("prepared usage %s belongs to another import; rebuilding it", path)
            return None
        header = json.loads(metadata[_HEADER])
        arrays = {
            name: table.column(name).chunk(0).values.to_numpy(zero_copy_only=False)
            for name in table.column_names
        }
    except (pa.ArrowException, KeyError, ValueError, IndexError):
        logger.warning("prepared usage %s unreadable; rebuilding it", path, exc_info=True)
        return None
    prepared = engine.PreparedUsage.from_stored(header, arrays)
    if prepared is None or prepared.rows != data_import.row_count:
        logger.warning("prepared usage %s does not fit its import; rebuilding it", path)
        return None
    return prepared, _signature(status, expected)


_MEMORY: OrderedDict[tuple[int, int, str], tuple[Signature, engine.PreparedUsage]] = OrderedDict()
_MEMORY_LOCK = threading.Lock()


def _memory_budget() -> int:
    """Bytes of prepared imports a process keeps (about 31 MiB per million rows)."""
    return int(getattr(settings, "SAVINGS_PREPARED_MEMORY_MB", 512)) * 2**20


def _forget(*, organization_id: int, import_id: int) -> None:
    with _MEMORY_LOCK:
        for key in [k for k in _MEMORY if k[:2] == (organization_id, import_id)]:
            del _MEMORY[key]


def memory_clear() -> None:
    """Forget every prepared import this process holds (tests, the bench)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


def prepared_of(
    data_import: DataImport,
    *,
    columns: Callable[[], engine.UsageColumns],
    label: str,
) -> engine.PreparedUsage:
    """The import prepared for the engine: from this process's memory when its file is
    unchanged since it was verified, else from the file (verified), else prepared from
    ``columns()`` and stored. Raises :class:`engine.SavingsInputError` for rows the engine
    refuses (nothing is kept then)."""
    if not cacheable(data_import):
        return engine.usage_prepare(columns(), label=label)
    key = (int(data_import.organization_id), int(data_import.pk), _identity(data_import))
    path = prepared_path(data_import)
    now = _signature_now(path)
    with _MEMORY_LOCK:
        entry = _MEMORY.get(key)
        if entry is not None and now is not None and entry[0] == now:
            _MEMORY.move_to_end(key)
            return entry[1]
    found = prepared_read(data_import)
    signature: Signature | None
    if found is None:
        prepared = engine.usage_prepare(columns(), label=label)
        signature = prepared_write(data_import, prepared)
    else:
        prepared, signature = found
    with _MEMORY_LOCK:
        _MEMORY.pop(key, None)
        budget = _memory_budget()
        if signature is not None and prepared.nbytes <= budget:
            _MEMORY[key] = (signature, prepared)
            while sum(entry[1].nbytes for entry in _MEMORY.values()) > budget:
                _MEMORY.popitem(last=False)  # the least recently used
    return prepared


def year_usage(
    *,
    base_imports: Sequence[DataImport],
    current_import: DataImport,
    prior_import: DataImport | None,
    quantity_pct: Mapping[str, Any] | None = None,
) -> tuple[engine.PreparedUsage, engine.PreparedUsage, engine.PreparedUsage | None] | None:
    """The base, current and prior usage of a programme year, prepared (a what-if on
    quantities applied to the current year's sums); ``None`` when the stored form is off or
    an import is not applied (the caller then reads the rows)."""
    imports = [*base_imports, current_import, *([prior_import] if prior_import else [])]
    if not all(cacheable(i) for i in imports):
        return None
    from . import selectors  # selectors reads the rows through this module

    if len(base_imports) == 1:
        base = usage_prepared(base_imports[0], label="base year")
    else:  # several base years: one set of cases across their files, prepared each time
        base = engine.usage_prepare(
            engine.UsageColumns.concat(
                [selectors.usage_columns(data_import=i) for i in base_imports]
            ),
            label="base year",
        )
    current = usage_prepared(current_import, label="programme year")
    if quantity_pct:
        current = current.quantities_scaled(quantity_pct)
    prior = usage_prepared(prior_import, label="prior year") if prior_import is not None else None
    return base, current, prior


def usage_prepared(data_import: DataImport, *, label: str) -> engine.PreparedUsage:
    """:func:`prepared_of` for an import, prepared from its rows when needed."""
    from . import selectors  # selectors reads the rows through this module

    return prepared_of(
        data_import,
        columns=lambda: selectors.usage_columns(data_import=data_import),
        label=label,
    )


def prepare_after_apply(data_import: DataImport) -> None:
    """Write an applied usage import's files now (the import's worker), so that the first
    calculation or what-if does not. A refusal or a failure is logged: the calculation
    prepares the import again and says what is wrong."""
    if not cacheable(data_import) or data_import.kind != ImportKind.USAGE:
        return
    try:
        usage_prepared(data_import, label=str(data_import))
    except (engine.SavingsInputError, OSError, pa.ArrowException):
        logger.warning("usage import %s not prepared", data_import.pk, exc_info=True)
