"""From a file's own columns to an import's canonical fields.

A mapping is ``{file column header: canonical field}`` plus formats (the date format) and
where the header is (row, sheet). :func:`propose` suggests one by names and aliases, then by
content; :func:`check` names what is wrong with one (a required field with no column, two
columns to one field, a column the file does not have); :class:`MappedBatches` turns the
file's batches into canonical columns of canonical text, which the importer then validates
as it validates a canonical file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from . import formats
from .header import header_key
from .problems import Problems, TableRefused


@dataclass(frozen=True)
class Field:
    """A canonical field: its name, the words a user knows it by, how its text is read."""

    name: str
    label: str
    kind: str = "text"  # text, date, amount, boolean, npi
    required: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def keys(self) -> set[str]:
        return {header_key(self.name), header_key(self.label)} | {
            header_key(a) for a in self.aliases
        }


@dataclass(frozen=True)
class FieldSet:
    fields: tuple[Field, ...]

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    def get(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    @property
    def keys(self) -> set[str]:
        out: set[str] = set()
        for f in self.fields:
            out |= f.keys
        return out

    def is_canonical(self, header: Sequence[str]) -> bool:
        """The header already names every required field by its own name."""
        names = {str(h).strip().lower().replace(" ", "_") for h in header}
        return all(f in names for f in self.required)


@dataclass(frozen=True)
class ColumnMapping:
    """What reads one file: columns to fields, the date format, where the header is."""

    columns: dict[str, str]  # file header -> field name
    date_format: str = "auto"
    header_row: int = 1
    sheet: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "columns": dict(self.columns),
            "date_format": self.date_format,
            "header_row": self.header_row,
            "sheet": self.sheet,
        }

    def on_header(self, header: Sequence[str], *, header_row: int, sheet: str) -> ColumnMapping:
        """This mapping read onto a file's own header, found at ``header_row``: each column
        named by the file's cell with the same :func:`header_key` ("Item No" reads
        "ITEM NO "), a column the file lacks kept as saved (:func:`check` then names it)."""
        by_key: dict[str, list[str]] = {}
        for cell in header:
            by_key.setdefault(header_key(cell), []).append(cell)
        columns: dict[str, str] = {}
        for column, name in self.columns.items():
            same = column if column in header else None
            if same is None:
                cells = by_key.get(header_key(column), [])
                same = cells[0] if len(cells) == 1 else column
            columns[same] = name
        return ColumnMapping(columns, self.date_format, header_row, sheet)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ColumnMapping:
        return cls(
            columns={str(k): str(v) for k, v in (data.get("columns") or {}).items() if v},
            date_format=str(data.get("date_format") or "auto"),
            header_row=int(data.get("header_row") or 1),
            sheet=str(data.get("sheet") or ""),
        )


_NPI = re.compile(r"^[0-9]{10}$")


def _looks(kind: str, samples: Sequence[str]) -> bool:
    present = [s for s in samples if s.strip()]
    if not present:
        return False
    column = pa.array(present, pa.string())
    if kind == "npi":
        return all(_NPI.match(v) for v in formats.parse_npis(column).to_pylist())
    if kind == "date":
        try:
            fmt = formats.detect_date_format(column)
        except formats.AmbiguousDates:
            return True
        return fmt is not None and fmt != "excel"
    if kind == "boolean":
        return all(v in ("true", "false") for v in formats.parse_booleans(column).to_pylist())
    return False


def propose(
    fields: FieldSet, header: Sequence[str], samples: dict[str, list[str]] | None = None
) -> dict[str, str]:
    """A mapping by name and alias first, then by content for the required fields still
    without a column (an NPI-shaped column, a date column, a yes/no column)."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for column in header:
        key = header_key(column)
        if not key or column in mapping:
            continue
        for f in fields:
            if f.name not in taken and key in f.keys:
                mapping[column] = f.name
                taken.add(f.name)
                break
    for f in fields:
        if f.name in taken or f.kind not in ("npi", "date", "boolean") or not samples:
            continue
        for column in header:
            if column not in mapping and _looks(f.kind, samples.get(column, [])):
                mapping[column] = f.name
                taken.add(f.name)
                break
    return mapping


def check(fields: FieldSet, header: Sequence[str], columns: dict[str, str]) -> list[dict[str, Any]]:
    """What is wrong with a mapping, as problems (row None, the column, why)."""
    problems: list[dict[str, Any]] = []
    by_field: dict[str, list[str]] = {}
    for column, name in columns.items():
        if not name:
            continue
        if column not in header:
            problems.append(
                {"row": None, "column": column, "message": "the file has no such column"}
            )
        if fields.get(name) is None:
            problems.append(
                {"row": None, "column": column, "message": f"{name} is not a field of this import"}
            )
        by_field.setdefault(name, []).append(column)
    for name, cols in by_field.items():
        if len(cols) > 1:
            label = fields.get(name)
            problems.append(
                {
                    "row": None,
                    "column": ", ".join(cols),
                    "message": f"two columns ({', '.join(cols)}) are mapped to one field, "
                    f"{label.label if label else name}: map only one",
                }
            )
    for f in fields:
        if f.required and f.name not in by_field:
            problems.append(
                {
                    "row": None,
                    "column": f.name,
                    "message": f"the required field {f.label} has no column",
                }
            )
    return problems


def unique_names(header: Iterable[str]) -> list[str]:
    """Header cells as column names: stripped, blanks named, repeats numbered."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for position, cell in enumerate(header, start=1):
        name = str(cell).lstrip("\ufeff").strip() or f"column {position}"
        if name in seen:
            seen[name] += 1
            name = f"{name} ({seen[name]})"
        else:
            seen[name] = 1
        out.append(name)
    return out


@dataclass
class MappedBatches:
    """Turns batches of the file's columns into batches of the canonical fields' text.

    A date column's format, when the mapping says ``auto``, is detected on the first batch and
    kept for the file; dates that fit two formats refuse the file (naming the column, a row
    and the text)."""

    fields: FieldSet
    mapping: ColumnMapping
    first_row: int
    chosen: dict[str, str] = field(default_factory=dict)
    #: Parsed columns as positions into their distinct values (a ``DictionaryArray``), for a
    #: reader that checks each distinct value once (the usage import) instead of encoding the
    #: column a second time; else plain columns.
    dictionary: bool = False

    @property
    def labels(self) -> dict[str, str]:
        return {name: column for column, name in self.mapping.columns.items()}

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields if f.name in self.labels]

    def convert(self, batch: pa.RecordBatch, *, first_row: int) -> pa.RecordBatch:
        labels = self.labels
        arrays = []
        names = []
        for f in self.fields:
            column = labels.get(f.name)
            if column is None:
                continue
            values = batch.column(column)
            if f.kind == "text":
                values = formats.trimmed(values)
            else:
                values = self._parsed(f, values, column=column, first_row=first_row)
            arrays.append(values)
            names.append(f.name)
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def _parsed(self, f: Field, values: pa.Array, *, column: str, first_row: int) -> pa.Array:
        """The column's canonical text, each distinct value parsed once (a year has 365
        dates, a file a few thousand prices): the same text as parsing every row, at a
        fraction of the work. Auto-detection sees the same set of values (the first value
        that fits two date formats is also the first such row)."""
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        distinct = encoded.dictionary
        if f.kind != "date":
            parsed, _ = formats.parse_column(distinct, formats.ColumnFormat(f.kind))
            return self._rows(encoded.indices, parsed)
        fmt = self.chosen.get(f.name, self.mapping.date_format)
        try:
            parsed, used = formats.parse_dates(distinct, fmt)
        except formats.AmbiguousDates as ambiguous:
            at = pc.index(pc.utf8_trim_whitespace(values), ambiguous.example).as_py()
            problems = Problems()
            problems.add(first_row + max(at, 0), column, f"'{ambiguous.example}': {ambiguous}")
            raise TableRefused(problems) from ambiguous
        if used:
            self.chosen[f.name] = used
        return self._rows(encoded.indices, parsed)

    def _rows(self, indices: pa.Array, parsed: pa.Array) -> pa.Array:
        if not self.dictionary or parsed.null_count:
            return parsed.take(indices)
        return pa.DictionaryArray.from_arrays(indices, parsed)
