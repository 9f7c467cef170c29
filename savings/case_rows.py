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


def case_agreement_checks(
    problems: Any,
    tables: list[pa.Table],
    rows_from: list[int],
    *,
    case_codes: tuple[Any, int] | None = None,
) -> None:
    """Add a problem for each case whose rows disagree on a case field (at most the importer's
    problem limit are listed; ``problems.total`` counts them all).

    ``tables`` are the validated batches (canonical columns, the file's own case ids) and
    ``rows_from`` the file row number of each batch's first row. One hash group-by says whether
    any case disagrees (the usual file has none); only then are the rows worked out.
    ``case_codes``, when given, is :func:`codes` of the same case ids (the caller's, reused)."""
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return
    fields = [f for f in CASE_FIELDS if all(f in t.column_names for t in tables)]
    whole = pa.concat_tables([t.select(["case_id", *fields]) for t in tables])
    if cases_agree(whole, fields, case_codes=case_codes):
        return
    import numpy as np

    from .importing import plain

    frame = pa.table([plain(c) for c in whole.columns], names=whole.column_names).to_pandas()
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
        names = [problems.header(f) for f in fields if differing[f].get(case, False)]
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


def codes(values: pa.ChunkedArray | pa.Array) -> tuple[Any, int]:
    """Each row's value as a number (the same value, the same number; a null its own number)
    and how many numbers there are.

    The chunks are joined first and encoded once: encoding each chunk and unifying their
    dictionaries costs several times more for a column of many distinct values (case ids)."""
    import pyarrow.compute as pc

    if isinstance(values, pa.ChunkedArray):
        try:
            values = values.combine_chunks() if values.num_chunks else pa.array([], values.type)
        except pa.ArrowInvalid:  # over 2 GiB of text in one column: chunk by chunk, unified
            if pa.types.is_dictionary(values.type):
                values = pc.cast(values, values.type.value_type)
            encoded = pa.table({"v": pc.dictionary_encode(values)}).unify_dictionaries()
            chunks = encoded.column("v").chunks
            size = len(chunks[0].dictionary)
            indices = pc.fill_null(pa.chunked_array([c.indices for c in chunks]), size)
            return indices.to_numpy().astype("int64"), size + 1
    if pa.types.is_dictionary(values.type):
        return _dictionary_codes(values)
    encoded = pc.dictionary_encode(values)
    dictionary_size = len(encoded.dictionary)
    indices = encoded.indices
    if encoded.null_count:
        indices = pc.fill_null(indices, dictionary_size)
    return indices.to_numpy().astype("int64"), dictionary_size + 1


def _dictionary_codes(values: pa.DictionaryArray) -> tuple[Any, int]:
    """:func:`codes` of a dictionary column: its distinct values numbered (equal text in two
    positions, or a null value, one number), each row's position mapped to that number."""
    import numpy as np
    import pyarrow.compute as pc

    inner = pc.dictionary_encode(values.dictionary)
    size = len(inner.dictionary)
    number = np.append(pc.fill_null(inner.indices, size).to_numpy(), size)
    positions = pc.fill_null(values.indices, len(values.dictionary)).to_numpy()
    return number[positions].astype("int64"), size + 1


def cases_agree(
    whole: pa.Table, fields: list[str], *, case_codes: tuple[Any, int] | None = None
) -> bool:
    """Whether every case's rows agree on ``fields``, without a hash group-by over the text:
    each row's fields as one number, written at the case's place and read back (whichever row
    wrote last, a row that disagrees reads back another number). False when the numbers would
    not fit (the caller then works it out the slow way)."""
    import numpy as np

    case, cases = case_codes if case_codes is not None else codes(whole.column("case_id"))
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
