"""The item master file: its layout and the checks of every row (pure, no database).

Reads a :class:`~comanage.core.master_imports.CanonicalTable` (columns already renamed to the
fields below), so a column mapping can be put in front of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from comanage.core.master_imports import CanonicalTable, Layout, field_labels, master_spec
from comanage.core.tabular.problems import Problems

FIELDS = ("code", "description", "manufacturer", "category", "unit_of_measure")
REQUIRED = ("code", "description")
MAX_LENGTH = {
    "code": 50,
    "description": 300,
    "manufacturer": 200,
    "category": 100,
    "unit_of_measure": 30,
}
FIELD_LABELS = field_labels(FIELDS, code="item code")
COLUMN_DOCS = [
    ("item_code", "required", "the code the usage files use for the item"),
    ("description", "required", "what the item is"),
    ("manufacturer", "optional", "who makes it"),
    ("category", "optional", "e.g. Orthopedic implants"),
    ("unit_of_measure", "optional", "e.g. EA, BX"),
]
CANONICAL = Layout(
    key="comanage",
    label="Comanage item master columns",
    columns={
        "item_code": "code",
        "code": "code",
        "item": "code",
        "item number": "code",
        "item #": "code",
        "description": "description",
        "item description": "description",
        "manufacturer": "manufacturer",
        "mfr": "manufacturer",
        "manufacturer name": "manufacturer",
        "category": "category",
        "unit_of_measure": "unit_of_measure",
        "uom": "unit_of_measure",
        "unit": "unit_of_measure",
    },
)
LAYOUTS = [CANONICAL]
SPEC = master_spec(
    model="savings.itemimport",
    kind="items",
    layouts=LAYOUTS,
    names=FIELDS,
    labels=FIELD_LABELS,
    required=REQUIRED,
)


@dataclass(frozen=True)
class ItemRow:
    row: int
    code: str
    description: str
    manufacturer: str
    category: str
    unit_of_measure: str


def parse_items(table: CanonicalTable) -> tuple[list[ItemRow], Problems]:
    """Every row checked; the problems name the row, the file's column and the reason."""
    problems = Problems()
    missing = [name for name in REQUIRED if name not in table.sources]
    for name in missing:
        problems.add(row=1, column=name, message=f"no column gives the {FIELD_LABELS[name]}")
    if missing:
        return [], problems
    rows: list[ItemRow] = []
    first_row_of: dict[str, int] = {}
    for number, values in zip(table.row_numbers, table.rows, strict=True):
        clean = {name: " ".join(values.get(name, "").split()) for name in FIELDS}
        ok = True
        for name in FIELDS:
            column = table.source(name)
            if name in REQUIRED and not clean[name]:
                problems.add(
                    row=number, column=column, message=f"the {FIELD_LABELS[name]} is empty"
                )
                ok = False
            elif len(clean[name]) > MAX_LENGTH[name]:
                problems.add(
                    row=number,
                    column=column,
                    message=f"the {FIELD_LABELS[name]} is longer than {MAX_LENGTH[name]} "
                    "characters",
                )
                ok = False
        code = clean["code"]
        if code and code.casefold() in first_row_of:
            problems.add(
                row=number,
                column=table.source("code"),
                message=f"the item code {code} is also on row {first_row_of[code.casefold()]}; "
                "give it once",
            )
            ok = False
        elif code:
            first_row_of[code.casefold()] = number
        if ok:
            rows.append(ItemRow(row=number, **clean))
    return rows, problems
