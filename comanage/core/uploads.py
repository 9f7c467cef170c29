"""Guards shared by every imported file (usage, prices, case files): size limits, and the
checks that make a bad file a refusal naming the row and the reason instead of a crash.

* :func:`upload_size_check`: the per-kind limit (``settings.IMPORT_MAX_BYTES``), checked before
  anything is read, on the web form and the API alike.
* :func:`csv_header` / :func:`csv_head`: the header and the first rows of a CSV from a bounded
  prefix of the file, with Python's ``csv`` module (cheap enough for the web request, which
  never reads a whole file).
* :func:`utf8_problem` and :func:`csv_ragged_rows`: where a file stops being UTF-8 text, and
  which rows have the wrong number of fields; run by the worker only once a fast reader has
  failed, so a good file pays nothing for them.
* :func:`xlsx_check`: an Excel workbook's declared (uncompressed) sizes against the caps
  before openpyxl opens it. Python's zipfile never inflates an entry past its declared size
  (it stops there and fails the CRC), so the declared sizes bound the work and the memory.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.defaultfilters import filesizeformat

HEADER_MAX_BYTES = 64 << 10
PREVIEW_BYTES = 1 << 20
KIND_LABELS = {
    "usage": "case-level usage files",
    "prices": "price files",
    "cases": "case files",
    "roster": "physician rosters",
    "items": "item master files",
    "results": "indicator results files",
}
_CHUNK = 1 << 20


class FileProblem(Exception):
    """The file cannot be read: refused, naming the row (the header is row 1) and the reason."""

    def __init__(self, message: str, *, row: int | None = None, column: str = ""):
        super().__init__(message)
        self.row = row
        self.column = column
        self.message = message


class UploadTooLarge(ValidationError):
    """The upload is over its kind's limit (answered 413 by the pages and the API)."""


def upload_limit(kind: str) -> int:
    return int(settings.IMPORT_MAX_BYTES[kind])


def upload_limit_text(kind: str) -> str:
    """ "The limit for price files is 64.0 MB": what the upload pages state."""
    return (
        f"The limit for {KIND_LABELS.get(kind, 'these files')} is "
        f"{filesizeformat(upload_limit(kind))}."
    )


def upload_size_check(*, kind: str, size: int | None) -> None:
    """Refuse an empty or oversize file before anything reads it."""
    if size is None:
        return
    if size == 0:
        raise ValidationError({"file": "The file is empty (0 bytes)."}, code="empty")
    limit = upload_limit(kind)
    if size > limit:
        raise UploadTooLarge(
            {
                "file": f"The file is {filesizeformat(size)}; the limit for "
                f"{KIND_LABELS.get(kind, 'these files')} is {filesizeformat(limit)}. "
                "Split it or ask your administrator to raise the limit."
            },
            code="too_large",
        )


# --------------------------------------------------------------------------------------------
# Text


def _not_utf8(byte: int, offset: int) -> str:
    return f"the file is not UTF-8 (byte {byte:#04x} at offset {offset:,}); save it as CSV UTF-8"


def utf8_problem(stream: IO[bytes], *, limit: int | None = None) -> FileProblem | None:
    """The first byte that is not UTF-8, as a problem naming its row; None if the text (up to
    ``limit`` bytes) is UTF-8. Reads in chunks; leaves the stream at its start."""
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    lines = 0
    try:
        while limit is None or offset < limit:
            chunk = stream.read(_CHUNK if limit is None else min(_CHUNK, limit - offset))
            if not chunk:
                decoder.decode(b"", final=limit is None)
                return None
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # The decoder may hold up to three bytes of the previous chunk (a character cut
                # by the chunking): ``exc.object`` is those bytes followed by this chunk.
                held = len(exc.object) - len(chunk)
                position = offset - held + exc.start
                row = lines + chunk[: max(exc.start - held, 0)].count(b"\n") + 1
                return FileProblem(_not_utf8(exc.object[exc.start], position), row=row)
            lines += chunk.count(b"\n")
            offset += len(chunk)
        return None
    except UnicodeDecodeError:
        return FileProblem(
            "the file ends in the middle of a character; save it as CSV UTF-8", row=lines + 1
        )
    finally:
        stream.seek(0)


def _line_end(data: bytes) -> int:
    """Where the first line ends (\\n, \\r\\n or a lone \\r, as old Mac exports have), or -1."""
    ends = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(ends) if ends else -1


def csv_header(first: bytes, *, at_end: bool) -> list[str]:
    """The header's names from the file's first bytes (``at_end``: they are the whole file).

    Raises :class:`FileProblem` for an empty file, a header over 64 KiB, text that is not
    UTF-8 or a workbook saved under a .csv name."""
    if first.startswith(b"PK\x03\x04"):
        raise FileProblem(
            "this is an Excel workbook (or another zip file), not CSV text: "
            "upload it with an .xlsx name, or save it as CSV UTF-8",
            row=1,
        )
    if first.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileProblem("the file is UTF-16 text; save it as CSV UTF-8", row=1)
    body = first[3:] if first.startswith(b"\xef\xbb\xbf") else first
    end = _line_end(body[: HEADER_MAX_BYTES + 1])
    if end < 0:
        if len(body) > HEADER_MAX_BYTES or not at_end:
            raise FileProblem(
                f"the header line is longer than {HEADER_MAX_BYTES // 1024} KiB: "
                "this is not a file of the documented columns",
                row=1,
            )
        end = len(body)
    line = body[:end]
    if b"\x00" in line:
        raise FileProblem("the file holds binary data (NUL bytes), not CSV text", row=1)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + (len(first) - len(body))
        raise FileProblem(_not_utf8(line[exc.start], offset), row=1) from exc
    if not text.strip():
        raise FileProblem("the file has no header line (the first line is empty)", row=1)
    try:
        names = next(csv.reader([text]), [])
    except csv.Error as exc:
        raise FileProblem(f"the header line cannot be read: {exc}", row=1) from exc
    return [n.strip() for n in names]


def _text_lines(stream: IO[bytes], *, limit: int | None) -> Iterator[str]:
    """The stream decoded as UTF-8 (a BOM dropped), up to ``limit`` bytes; newlines kept for
    the csv module (which also splits on a lone \\r). Undecodable bytes become U+FFFD: the
    callers look at row shapes, and UTF-8 is checked separately."""
    stream.seek(0)
    wrapper = io.TextIOWrapper(
        io.BufferedReader(_Bounded(stream, limit)),
        encoding="utf-8-sig",
        errors="replace",
        newline="",
    )
    yield from wrapper


class _Bounded(io.RawIOBase):
    def __init__(self, stream: IO[bytes], limit: int | None):
        self.stream, self.left = stream, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = len(buffer) if self.left is None else min(len(buffer), self.left)
        data = self.stream.read(size)
        buffer[: len(data)] = data
        if self.left is not None:
            self.left -= len(data)
        return len(data)

    def close(self) -> None:  # the caller owns the stream
        pass


def _too_many_or_few(count: int, expected: int) -> str:
    return (
        f"{count} fields, expected {expected} (the header has {expected} columns); a value "
        "holding a comma, like an amount written 1,250, must be in double quotes or "
        "written without the comma"
    )


def _row_problem(fields: list[str], expected: int) -> str | None:
    return _too_many_or_few(len(fields), expected) if len(fields) != expected else None


@dataclass
class RaggedRows:
    items: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0


def csv_ragged_rows(
    stream: IO[bytes], *, expected: int, keep: int = 100, limit: int | None = None
) -> RaggedRows:
    """Rows whose field count is not the header's. Rows are numbered as the importers number
    them: the header is row 1, a blank line is a row (passed over, but counted), a quoted
    value spanning lines is in one row."""
    found = RaggedRows()
    reader = csv.reader(_text_lines(stream, limit=limit), strict=False)
    row = 1
    try:
        next(reader, None)
        for fields in reader:
            row += 1
            if not fields or fields == [""]:
                continue
            problem = _row_problem(fields, expected)
            if problem:
                found.total += 1
                if len(found.items) < keep:
                    found.items.append((row, problem))
    except csv.Error as exc:
        found.total += 1
        found.items.append((row + 1, f"the row cannot be read as CSV: {exc}"))
    finally:
        stream.seek(0)
    return found


@dataclass
class CsvHead:
    names: list[str]
    rows: list[list[str]]
    problems: list[tuple[int | None, str]]
    checked_bytes: int
    whole_file: bool


def csv_head(stream: IO[bytes], *, rows: int = 10, max_bytes: int = PREVIEW_BYTES) -> CsvHead:
    """The header and the first ``rows`` rows from at most ``max_bytes`` of the file, with any
    problem in that part named by row (not UTF-8, a row with the wrong number of fields).
    Never raises for a bad file: the web preview shows what it found."""
    stream.seek(0)
    prefix = stream.read(max_bytes + 1)
    stream.seek(0)
    whole = len(prefix) <= max_bytes
    prefix = prefix[:max_bytes]
    try:
        names = csv_header(prefix, at_end=whole)
    except FileProblem as refused:
        return CsvHead([], [], [(refused.row, refused.message)], len(prefix), whole)
    problems: list[tuple[int | None, str]] = []
    # A character cut at the end of the prefix is not an error: only a complete file ends
    # mid-character.
    bad = utf8_problem(io.BytesIO(prefix), limit=len(prefix) if not whole else None)
    if bad is not None:
        problems.append((bad.row, bad.message))
    if not whole:
        # Only whole lines: the last one the prefix holds may be cut short.
        prefix = prefix[: max(prefix.rfind(b"\n"), prefix.rfind(b"\r")) + 1]
    first: list[list[str]] = []
    reader = csv.reader(_text_lines(io.BytesIO(prefix), limit=None), strict=False)
    row = 1
    try:
        next(reader, None)
        for fields in reader:
            row += 1
            if not fields or fields == [""]:
                continue
            problem = _row_problem(fields, len(names))
            if problem:
                if len(problems) < 20:
                    problems.append((row, problem))
            elif len(first) < rows:
                first.append(fields)
    except csv.Error as exc:
        problems.append((row + 1, f"the row cannot be read as CSV: {exc}"))
    return CsvHead(names, first, problems, len(prefix), whole)


# --------------------------------------------------------------------------------------------
# Excel


def xlsx_check(stream: IO[bytes]) -> None:
    """Refuse a workbook whose declared uncompressed sizes are over the caps, before openpyxl
    reads it: the worksheets (streamed in read-only mode: the cap bounds the time) and the rest
    (shared strings, styles, workbook: loaded whole into memory: the cap bounds the memory)."""
    sheet_cap = int(settings.IMPORT_XLSX_MAX_SHEET_BYTES)
    other_cap = int(settings.IMPORT_XLSX_MAX_OTHER_BYTES)
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise FileProblem(
            "the file is not an Excel workbook (.xlsx); save it as Excel Workbook or as CSV UTF-8"
        ) from exc
    finally:
        stream.seek(0)
    if not any(e.filename.startswith("xl/worksheets/") for e in entries):
        raise FileProblem("the workbook has no worksheet")
    other = 0
    for entry in entries:
        if entry.filename.startswith("xl/worksheets/") and entry.filename.endswith(".xml"):
            if entry.file_size > sheet_cap:
                raise FileProblem(
                    f"the worksheet {entry.filename.rsplit('/', 1)[-1]} expands to "
                    f"{filesizeformat(entry.file_size)}, over the limit of "
                    f"{filesizeformat(sheet_cap)}; save it as CSV UTF-8 instead"
                )
        else:
            other += entry.file_size
    if other > other_cap:
        raise FileProblem(
            f"the workbook's shared strings and other parts expand to {filesizeformat(other)}, "
            f"over the limit of {filesizeformat(other_cap)}; save it as CSV UTF-8 instead"
        )


def xlsx_row_cap() -> int:
    return int(settings.IMPORT_XLSX_MAX_ROWS)


def xlsx_too_many_rows(cap: int) -> FileProblem:
    return FileProblem(
        f"the workbook has more than {cap:,} rows, the limit for Excel files; "
        "save it as CSV UTF-8 or split it",
        row=cap + 1,
    )


# --------------------------------------------------------------------------------------------
# Discarding an import that was never applied


class ImportNotDiscardable(ValidationError):
    """An applied (or running) import cannot be discarded (409 on the API)."""


RUNNING = "This import is running: wait for it to finish (or fail), then discard it."


def stored_file_remove_on_commit(stored: Any) -> None:
    """Remove an upload's stored file (a ``FieldFile``) once the current transaction is stored:
    a discard or a deletion rolled back (a later step failing) leaves the row and its file
    together. The name and the storage are read now, so the row may be changed or deleted
    after this call."""
    name, storage = stored.name, stored.storage
    if name:
        transaction.on_commit(lambda: storage.delete(name))


def import_job_release(*, job_id: int | None) -> None:
    """Before an import is discarded: its job must not be running. A queued one is failed
    (a conditional UPDATE, so a worker claiming it at the same moment wins or loses cleanly),
    so a later delivery does not start it and the same file may be uploaded again. A job left
    RUNNING by a dead worker (PostgreSQL: nobody holds its lease) is failed too."""
    if job_id is None:
        return
    from .jobs import job_fail, job_lease_is_held, lease_supported
    from .models import Job, JobStatus

    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.status in (JobStatus.FAILED, JobStatus.SUCCEEDED):
        return
    if job.status == JobStatus.RUNNING and (not lease_supported() or job_lease_is_held(job_id)):
        raise ImportNotDiscardable(RUNNING, code="running")
    claimed = Job.objects.filter(pk=job_id, status=job.status).update(status=JobStatus.FAILED)
    if not claimed:
        raise ImportNotDiscardable(RUNNING, code="running")
    job_fail(job_id, message="The import was discarded before it ran.")
