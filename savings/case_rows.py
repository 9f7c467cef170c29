"""One case, many rows (spec 4, edge case): the rows of one case must agree on its case fields.

A usage file has one row per item used in a case; the case's own fields (case type, physician,
payer, federal flag, notice and opt-out) are repeated on each row. An import holding a case whose
rows disagree is refused, naming the case and the rows: the engine takes a case's fields from
its rows and must not have to guess which row is right. (A case is dated by its earliest
service date, so the date may differ between its rows.)
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

CASE_FIELDS: tuple[str, ...] = (
    "case_type",
    "physician_npi",
    "payer",
    "federal_program",
    "notice_date",
    "opted_out",
)
ROWS_SHOWN = 5


def case_agreement_checks(problems: Any, tables: list[pa.Table], rows_from: list[int]) -> None:
    """Add a problem for each case whose rows disagree on a case field (at most the importer's
    problem limit are listed; ``problems.total`` counts them all).

    ``tables`` are the validated batches (canonical columns, the file's own case ids) and
    ``rows_from`` the file row number of each batch's first row. One hash group-by says whether
    any case disagrees (the usual file has none); only then are the rows worked out."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return
    fields = [f for f in CASE_FIELDS if all(f in t.column_names for t in tables)]
    whole = pa.concat_tables([t.select(["case_id", *fields]) for t in tables])
    if cases_agree(whole, fields):
        return
    import numpy as np

    frame = whole.to_pandas()
    frame["row"] = np.concatenate(
        [np.arange(start, start + t.num_rows) for start, t in zip(rows_from, tables, strict=True)]
    )
    by_case = frame.groupby("case_id", sort=False)
    differing = {f: by_case[f].nunique(dropna=False) > 1 for f in fields}
    bad = [
        case for case in by_case.size().index if any(differing[f].get(case, False) for f in fields)
    ]
    from .importing import MAX_PROBLEMS

    problems.total += len(bad)
    for case in bad[:MAX_PROBLEMS]:
        rows = frame.loc[frame["case_id"] == case, "row"].tolist()
        names = [f for f in fields if differing[f].get(case, False)]
        shown = ", ".join(str(r) for r in rows[:ROWS_SHOWN]) + (
            f" and {len(rows) - ROWS_SHOWN} more" if len(rows) > ROWS_SHOWN else ""
        )
        problems.items.append(
            {
                "row": int(rows[0]),
                "column": names[0],
                "message": f"the rows of case {case} disagree on {', '.join(names)} "
                f"(rows {shown}): all rows of one case must agree",
            }
        )


def codes(values: pa.ChunkedArray) -> tuple[Any, int]:
    """Each row's value as a number (the same value, the same number; a null its own number)
    and how many numbers there are."""
    import pyarrow.compute as pc

    encoded = pa.table({"v": pc.dictionary_encode(values)}).unify_dictionaries().column("v")
    dictionary_size = len(encoded.chunk(0).dictionary) if encoded.num_chunks else 0
    indices = pc.fill_null(
        pa.chunked_array([c.indices for c in encoded.chunks], pa.int32()), dictionary_size
    )
    return indices.to_numpy().astype("int64"), dictionary_size + 1


def cases_agree(whole: pa.Table, fields: list[str]) -> bool:
    """Whether every case's rows agree on ``fields``, without a hash group-by over the text:
    each row's fields as one number, written at the case's place and read back (whichever row
    wrote last, a row that disagrees reads back another number). False when the numbers would
    not fit (the caller then works it out the slow way)."""
    import numpy as np

    case, cases = codes(whole.column("case_id"))
    signature = np.zeros(len(case), dtype=np.int64)
    span = 1
    for name in fields:
        value, count = codes(whole.column(name))
        span *= count
        if span >= 1 << 62:
            return False
        signature = signature * count + value
    kept = np.empty(cases, dtype=np.int64)
    kept[case] = signature
    return bool((kept[case] == signature).all())
