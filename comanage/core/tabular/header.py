"""Finding the header row of an export: hospital systems put a title row or two above it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import IO

HEAD_ROWS = 30  # rows looked at for the header
HEAD_BYTES = 1 << 20  # of a CSV, for the mapping step


def header_key(name: object) -> str:
    """A header cell as matched against names and aliases: lower case, letters and digits
    only ("Surgeon NPI" and "surgeon_npi" are both ``surgeonnpi``)."""
    return re.sub(r"[^a-z0-9]+", "", str(name).lstrip("\ufeff").strip().lower())


def header_signature(names: Iterable[str]) -> str:
    """The header as a saved mapping recognises it again (order kept, cells normalised)."""
    return "|".join(header_key(n) for n in names)


def find_header(rows: Sequence[Sequence[str]], known: set[str], *, minimum: int = 2) -> int | None:
    """The 1-based number of the row that names the most known columns (``known`` holds
    :func:`header_key` values), at least ``minimum`` of them; None if no row does."""
    best, best_score = None, 0
    for number, row in enumerate(rows[:HEAD_ROWS], start=1):
        keys = {header_key(cell) for cell in row if str(cell).strip()}
        score = len(keys & known)
        if score > best_score:
            best, best_score = number, score
    return best if best_score >= min(minimum, max(len(known), 1)) else None


def csv_rows(data: bytes, *, rows: int = HEAD_ROWS + 10) -> list[list[str]]:
    """The first rows of a CSV as text (blank lines kept as empty rows, so numbers match the
    file's lines); a row the csv module cannot read ends the list."""
    text = data.decode("utf-8-sig", errors="replace")
    out: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=False)
    try:
        for fields in reader:
            out.append([f.strip() for f in fields])
            if len(out) >= rows:
                break
    except csv.Error:
        pass
    return out


def csv_head_rows(stream: IO[bytes]) -> list[list[str]]:
    """The first rows of a CSV: what the mapping step looks at (its first MiB only)."""
    stream.seek(0)
    first = stream.read(HEAD_BYTES)
    stream.seek(0)
    return csv_rows(first)
