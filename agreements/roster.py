"""The physician roster file: its layouts and the checks of every row (pure, no database).

Reads a :class:`~comanage.core.master_imports.CanonicalTable` (columns already renamed to the
fields below), so any column mapping can be put in front of it. Two built-in layouts: the
product's own column names, and the public NPPES registry extract ("NPI", "Provider Last Name
(Legal Name)", "Provider First Name", "Provider Organization Name (Legal Business Name)",
"Entity Type Code", ...), whose other columns are ignored.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from comanage.core.master_imports import CanonicalTable, Layout, field_labels, master_spec
from comanage.core.tabular.problems import Problems

from .validators import npi_is_valid

FIELDS = (
    "npi",
    "first_name",
    "last_name",
    "practice",
    "specialty",
    "email",
    "join_date",
    "leave_date",
    "entity_type",
)
REQUIRED = ("npi", "first_name", "last_name")
FIELD_LABELS = field_labels(FIELDS, npi="NPI", email="e-mail")
# What each column holds, for the upload page.
COLUMN_DOCS = [
    ("npi", "required", "10 digits (spaces and dashes are ignored); the check digit must be right"),
    ("first_name", "required", "as on the NPI registry"),
    ("last_name", "required", "as on the NPI registry"),
    ("practice", "optional", "the name of a practice already set up here; empty keeps the current"),
    ("specialty", "optional", "empty keeps the current"),
    ("email", "optional", "empty keeps the current"),
    (
        "join_date",
        "optional",
        "joins the agreement chosen on upload: YYYY-MM-DD or M/D/YYYY (a column whose every "
        "date could be D/M too needs its format chosen in the mapping)",
    ),
    ("leave_date", "optional", "leaves that agreement on this day: YYYY-MM-DD or M/D/YYYY"),
]

_OWN = {name: name for name in FIELDS if name != "entity_type"}
CANONICAL = Layout(
    key="comanage",
    label="Comanage roster columns",
    columns={
        **_OWN,
        # the words medical-staff and credentialing exports use (the mapping step proposes
        # by them; the user confirms)
        "physician npi": "npi",
        "provider npi": "npi",
        "first": "first_name",
        "given name": "first_name",
        "last": "last_name",
        "surname": "last_name",
        "family name": "last_name",
        "group": "practice",
        "practice name": "practice",
        "email address": "email",
        "e mail": "email",
        "start date": "join_date",
        "end date": "leave_date",
    },
)
NPPES = Layout(
    key="nppes",
    label="NPPES registry extract",
    columns={
        "NPI": "npi",
        "Provider First Name": "first_name",
        "Provider Last Name (Legal Name)": "last_name",
        "Provider Organization Name (Legal Business Name)": "practice",
        "Entity Type Code": "entity_type",
        # columns a hospital adds to the extract for the agreement
        **{k: v for k, v in _OWN.items() if k not in ("npi", "first_name", "last_name")},
    },
    signature=("NPI", "Provider Last Name (Legal Name)", "Provider First Name"),
)
LAYOUTS = [CANONICAL, NPPES]  # the first is read when no signature matches
# The mapping step's fields: every layout's headers propose them. Dates are detected per
# column; a column whose dates all fit both M/D and D/M (03/04/2025) is refused naming the
# column until the mapping says which (issue 17, bad input), as for every other import.
SPEC = master_spec(
    model="agreements.rosterimport",
    kind="roster",
    layouts=LAYOUTS,
    names=FIELDS,
    labels={**FIELD_LABELS, "email": "e-mail", "entity_type": "NPPES entity type"},
    required=REQUIRED,
    kinds={"npi": "npi", "join_date": "date", "leave_date": "date"},
)
LAYOUT_CHOICES = [("", "Recognise from the headers"), *((lay.key, lay.label) for lay in LAYOUTS)]


def layout_named(key: str) -> Layout | None:
    return next((lay for lay in LAYOUTS if lay.key == key), None)


@dataclass(frozen=True)
class RosterRow:
    row: int
    npi: str
    first_name: str
    last_name: str
    practice: str
    specialty: str
    email: str
    join_date: dt.date | None
    leave_date: dt.date | None


_US_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_date(text: str) -> dt.date:
    """``YYYY-MM-DD`` or ``M/D/YYYY`` (US order); ``ValueError`` otherwise."""
    match = _US_DATE.match(text)
    if match:
        month, day, year = (int(g) for g in match.groups())
        return dt.date(year, month, day)
    return dt.date.fromisoformat(text)


def _name(text: str) -> str:
    """Spaces collapsed; a name written all in capitals (as the NPI registry writes them) is
    given ordinary capitals: "O'BRIEN" -> "O'Brien"."""
    text = " ".join(text.split())
    return text.title() if text.isupper() else text


def npi_normalise(text: str) -> str:
    return re.sub(r"[\s\-]", "", text)


def npi_problem(npi: str) -> str | None:
    if not npi:
        return "the NPI is empty"
    if len(npi) != 10 or not npi.isdigit():
        return f"an NPI is 10 digits; “{npi[:20]}” is not"
    if not npi_is_valid(npi):
        return f"the NPI {npi} fails the check digit (NPI Luhn rule with the 80840 prefix)"
    return None


_Bad = Callable[[str, str], None]


def _check_entity(values: dict[str, str], bad: _Bad) -> bool:
    """False (and a problem) when the NPI registry says the row is an organization."""
    entity = values.get("entity_type", "").strip()
    if entity and entity != "1":
        bad(
            "entity_type",
            f"entity type {entity} is an organization in the NPI registry, not a physician "
            "(type 1); remove the row",
        )
        return False
    return True


def _check_npi(values: dict[str, str], bad: _Bad, number: int, first_row_of: dict[str, int]) -> str:
    npi = npi_normalise(values.get("npi", ""))
    problem = npi_problem(npi)
    if problem:
        bad("npi", problem)
    elif npi in first_row_of:
        bad("npi", f"the NPI {npi} is also on row {first_row_of[npi]}; give it once")
    else:
        first_row_of[npi] = number
    return npi


def _check_names(values: dict[str, str], bad: _Bad) -> dict[str, str]:
    names = {}
    for name in ("first_name", "last_name"):
        names[name] = _name(values.get(name, ""))
        if not names[name]:
            bad(name, f"the {FIELD_LABELS[name]} is empty")
        elif len(names[name]) > 100:
            bad(name, f"the {FIELD_LABELS[name]} is longer than 100 characters")
    return names


def _check_dates(values: dict[str, str], bad: _Bad) -> tuple[dt.date | None, dt.date | None]:
    dates: dict[str, dt.date | None] = {}
    for name in ("join_date", "leave_date"):
        text = values.get(name, "").strip()
        dates[name] = None
        if text:
            try:
                dates[name] = parse_date(text)
            except ValueError:
                bad(name, f"“{text[:30]}” is not a date (YYYY-MM-DD or M/D/YYYY)")
    join, leave = dates["join_date"], dates["leave_date"]
    if join and leave and leave < join:
        bad("leave_date", "the leave date is before the join date")
    return join, leave


def _check_email(values: dict[str, str], bad: _Bad) -> str:
    email = values.get("email", "").strip()
    if email and (len(email) > 254 or not _EMAIL.match(email)):
        bad("email", f"“{email[:60]}” is not an e-mail address")
    return email


def _check_specialty(values: dict[str, str], bad: _Bad) -> str:
    specialty = " ".join(values.get("specialty", "").split())
    if len(specialty) > 100:
        bad("specialty", "the specialty is longer than 100 characters")
    return specialty


def parse_roster(table: CanonicalTable) -> tuple[list[RosterRow], Problems]:
    """Every row checked; the problems name the row, the file's column and the reason."""
    problems = Problems()
    missing = [name for name in REQUIRED if name not in table.sources]
    for name in missing:
        problems.add(row=1, column=name, message=f"no column gives the {FIELD_LABELS[name]}")
    if missing:
        return [], problems
    rows: list[RosterRow] = []
    first_row_of: dict[str, int] = {}
    for number, values in zip(table.row_numbers, table.rows, strict=True):

        def bad(name: str, message: str, number: int = number) -> None:
            problems.add(row=number, column=table.source(name), message=message)

        if not _check_entity(values, bad):
            continue
        npi = _check_npi(values, bad, number, first_row_of)
        names = _check_names(values, bad)
        join, leave = _check_dates(values, bad)
        email = _check_email(values, bad)
        specialty = _check_specialty(values, bad)
        rows.append(
            RosterRow(
                row=number,
                npi=npi,
                first_name=names["first_name"],
                last_name=names["last_name"],
                practice=" ".join(values.get("practice", "").split()),
                specialty=specialty,
                email=email,
                join_date=join,
                leave_date=leave,
            )
        )
    return rows, problems
