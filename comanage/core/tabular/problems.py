"""The one collector of an import's problems: row, column, message; the first
:data:`MAX_PROBLEMS` kept (in row order once trimmed) and the total counted."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_PROBLEMS = 100


def short(value: object, limit: int = 60) -> str:
    """A cell as a message shows it, cut short: a 1 MB cell makes a short message."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _as_bool_numpy(mask: Any) -> Any:
    import numpy as np
    import pyarrow as pa

    if isinstance(mask, pa.ChunkedArray | pa.Array):
        return mask.fill_null(True).to_numpy(zero_copy_only=False)
    return np.asarray(mask, dtype=bool)


def _nothing_flagged(mask: Any) -> bool:
    """An Arrow mask with no position set (and no null, which counts as set): answered from
    the bitmap, without unpacking it (the usual column has no problem)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(mask, pa.ChunkedArray | pa.Array) or mask.null_count:
        return False
    return not pc.any(mask).as_py()


class Problem(dict[str, Any]):
    """One problem: a dict ``{"row", "column", "message"}`` (JSON as it is) that also reads
    as attributes (``problem.row``)."""

    def __init__(self, row: int | None, column: str, message: str):
        super().__init__(row=row, column=column, message=message)

    @property
    def row(self) -> int | None:
        return self["row"]

    @property
    def column(self) -> str:
        return str(self["column"])

    @property
    def message(self) -> str:
        return str(self["message"])

    def as_dict(self) -> dict[str, Any]:
        return dict(self)


@dataclass
class Problems:
    """Problems as dicts ``{"row", "column", "message"}``.

    ``labels`` maps a canonical column to the file's own header (set when a mapping read the
    file), so a message names the column the user knows."""

    items: list[Any] = field(default_factory=list)
    total: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    first_row: int = 2  # the row of a whole-file frame's first position (header on row 1)
    #: Each position's row in the file, when the frame left empty rows out (else first_row on).
    row_numbers: Any = None

    def header(self, column: str) -> str:
        """The column as the file names it (its own header when a mapping read the file):
        what a message says, so that it names the column the user knows."""
        return self.labels.get(column, column)

    _column = header

    def add(self, row: int | None = None, column: str = "", message: str = "") -> None:
        self.total += 1
        if len(self.items) < MAX_PROBLEMS * 2:
            self.items.append(Problem(row, self._column(column), message))

    def add_mask(
        self,
        mask: Any,
        rows: Any,
        column: str,
        message: Callable[[Any], str],
        values: Any = None,
    ) -> None:
        """One problem per flagged position; ``rows`` gives each position's row number."""
        if _nothing_flagged(mask):
            return
        mask_np = _as_bool_numpy(mask)
        count = int(mask_np.sum())
        if not count:
            return
        self.total += count
        positions = mask_np.nonzero()[0][:MAX_PROBLEMS]
        if values is not None and hasattr(values, "take"):
            picked = values.take(positions)
            vals = picked.to_pylist() if hasattr(picked, "to_pylist") else list(picked)
        else:
            vals = [None] * len(positions)
        label = self._column(column)
        for position, value in zip(positions, vals, strict=True):
            self.items.append(Problem(int(rows[position]), label, message(value)))

    def add_rows(
        self, mask: Any, column: str, message_for: Callable[..., str], *, first_row: int = 0
    ) -> None:
        """One problem per flagged position of a whole-file frame (position 0 is
        ``first_row``, by default :attr:`first_row`); ``message_for`` gets the position."""
        first_row = first_row or self.first_row
        import numpy as np

        positions = np.flatnonzero(_as_bool_numpy(mask))
        self.total += len(positions)
        label = self._column(column)
        room = max(MAX_PROBLEMS - len(self.items), 0)
        numbers = self.row_numbers
        for pos in positions[:room]:
            row = int(numbers[pos]) if numbers is not None else int(pos) + first_row
            self.items.append(Problem(row, label, message_for(int(pos))))

    def trim(self) -> None:
        self.items.sort(key=lambda e: (e["row"] if e["row"] is not None else -1, e["column"]))
        del self.items[MAX_PROBLEMS:]

    def as_list(self) -> list[dict[str, Any]]:
        """The kept problems as plain dicts (the first :data:`MAX_PROBLEMS`)."""
        return [dict(p) for p in self.items[:MAX_PROBLEMS]]

    def __bool__(self) -> bool:
        return self.total > 0


class TableRefused(ValueError):
    """A file refused before anything is stored, with its problems."""

    def __init__(self, problems: Problems, message: str = ""):
        self.problems = problems
        super().__init__(message or f"{problems.total} problem(s) in the file")


def refused(row: int | None, column: str, message: str) -> TableRefused:
    problems = Problems()
    problems.add(row, column, message)
    return TableRefused(problems)
