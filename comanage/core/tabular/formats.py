"""Vectorised, exact parsing of the formats hospital exports use (pyarrow compute, strings in,
canonical strings out: no value ever passes through float).

Each parser takes a column of trimmed text and returns ``(canonical, understood)``: the
canonical text where the value was understood, the original text where it was not (the
importer's own checks then name the row, the column and the original text).

* dates: ISO ``YYYY-MM-DD``, ``M/D/YYYY``, ``M/D/YY`` (US), ``D/M/YYYY``, Excel serial days,
  and a month by name (``13-Jan-2025``, ``13-JAN-25``, ``13 Jan 2025``, ``Jan 13, 2025``,
  ``January 13 2025``: read in every format, as ISO is, since they cannot be misread);
* amounts: ``$``, thousands separators, ``(12.50)`` and ``12.50-`` for negatives;
* true/false: the words of :mod:`.words`;
* NPIs: spaces and dashes dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from .words import FALSE_WORDS, TRUE_WORDS

DATE_FORMATS: dict[str, str] = {
    "auto": "Detect from the dates",
    "iso": "Year-month-day (2025-12-31)",
    "mdy": "Month/day/year, US (12/31/2025 or 12/31/25)",
    "dmy": "Day/month/year (31/12/2025)",
    "excel": "Excel serial day numbers (45657)",
}
EXCEL_EPOCH_DAYS = 25569  # 1899-12-30 .. 1970-01-01: Excel's day 0 as Arrow's date32

_ISO = r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$"
_SLASH = r"^(?P<a>[0-9]{1,2})[/.-](?P<b>[0-9]{1,2})[/.-](?P<y>[0-9]{4}|[0-9]{2})$"
_SERIAL = r"^[0-9]{1,6}(?:\.0+)?$"
# A month by name: 13-Jan-2025, 13-JAN-25, 13 Jan 2025 (day first); Jan 13, 2025, January 13
# 2025 (month first).
_DAY_MONTH = r"^(?P<d>[0-9]{1,2})[- ](?P<m>[A-Za-z]{3,9})\.?[- ](?P<y>[0-9]{4}|[0-9]{2})$"
_MONTH_DAY = r"^(?P<m>[A-Za-z]{3,9})\.? (?P<d>[0-9]{1,2}),? (?P<y>[0-9]{4})$"
_MONTH_NAMES = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_CANONICAL_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
# A time after the date, as SQL and spreadsheet exports write a date column (2025-01-05
# 00:00:00, 2025-01-05T00:00:00, 1/5/2025 0:00, 1/5/2025 12:00 AM): the date is read, the time
# of day dropped. A time zone or offset is not understood (the day could be another).
_TIME = r"(?:[ T]+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:\s*[AaPp]\.?[Mm]\.?)?)$"


class AmbiguousDates(ValueError):
    """A column of dates that read as month/day and as day/month alike."""

    def __init__(self, example: str):
        self.example = example
        super().__init__(
            f"dates such as {example} fit both month/day/year and day/month/year: "
            "choose the date format in the mapping"
        )


def trimmed(values: pa.Array) -> pa.Array:
    return pc.utf8_trim_whitespace(values)


def _keep(values: pa.Array, canonical: pa.Array, understood: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(understood, False), canonical, values)


def _real_dates(iso: pa.Array) -> pa.Array:
    """``iso`` (YYYY-MM-DD or null) where it is a real calendar date, else null."""
    try:
        # Arrow's cast refuses impossible dates (2025-02-30) but fails the whole column: the
        # usual file, every date real, takes this one fast pass.
        pc.cast(iso, pa.date32())
        return iso
    except pa.ArrowInvalid:
        # strptime rolls 2025-02-30 over to 2025-03-02: a real date formats back to its text.
        stamps = pc.strptime(iso, format="%Y-%m-%d", unit="s", error_is_null=True)
        same = pc.fill_null(pc.equal(pc.strftime(stamps, format="%Y-%m-%d"), iso), False)
        return pc.if_else(same, iso, pa.scalar(None, pa.string()))


def _pad(values: pa.Array, width: int) -> pa.Array:
    return pc.utf8_lpad(values, width=width, padding="0")


def _slash_dates(values: pa.Array, order: str) -> pa.Array:
    parts = pc.extract_regex(values, _SLASH)
    a, b, year = (pc.struct_field(parts, name) for name in ("a", "b", "y"))
    year = _two_digit_years(year)
    month, day = (a, b) if order == "mdy" else (b, a)
    iso = pc.binary_join_element_wise(year, _pad(month, 2), _pad(day, 2), "-")
    return _real_dates(iso)


def _two_digit_years(year: pa.Array) -> pa.Array:
    """Two-digit years as POSIX strptime reads %y: 69-99 are 19xx, 00-68 are 20xx."""
    short = pc.equal(pc.utf8_length(year), 2)
    century = pc.if_else(pc.less(year, "69"), "20", "19")
    return pc.if_else(short, pc.binary_join_element_wise(century, year, ""), year)


def _named_month(values: pa.Array) -> pa.Array:
    """Where a value is a date with its month by name (:data:`_DAY_MONTH`, :data:`_MONTH_DAY`)."""
    return pc.or_(
        pc.match_substring_regex(values, _DAY_MONTH), pc.match_substring_regex(values, _MONTH_DAY)
    )


def _named_month_dates(values: pa.Array) -> pa.Array:
    """ISO text of the dates written with a month by name (null elsewhere, and where the name
    is not a month's or the day is not in it)."""
    names = pa.array(list(_MONTH_NAMES), pa.string())
    numbers = pa.array([f"{n:02d}" for n in _MONTH_NAMES.values()], pa.string())
    iso = pa.nulls(len(values), pa.string())
    for pattern in (_DAY_MONTH, _MONTH_DAY):
        parts = pc.extract_regex(
            pc.if_else(
                pc.match_substring_regex(values, pattern), values, pa.scalar(None, pa.string())
            ),
            pattern,
        )
        day, month, year = (pc.struct_field(parts, name) for name in ("d", "m", "y"))
        month = pc.take(numbers, pc.index_in(pc.utf8_lower(month), value_set=names))
        iso = pc.coalesce(
            iso, pc.binary_join_element_wise(_two_digit_years(year), month, _pad(day, 2), "-")
        )
    return _real_dates(iso)


def _serial_dates(values: pa.Array) -> pa.Array:
    serial = pc.if_else(
        pc.match_substring_regex(values, _SERIAL),
        pc.replace_substring_regex(values, r"\.0+$", ""),
        pa.scalar(None, pa.string()),
    )
    days = pc.cast(serial, pa.int64())
    in_range = pc.and_(pc.greater(days, 0), pc.less(days, 2958466))  # up to 9999-12-31
    days = pc.if_else(in_range, days, pa.scalar(None, pa.int64()))
    dates = pc.cast(pc.subtract(days, EXCEL_EPOCH_DAYS), pa.int32()).cast(pa.date32())
    return pc.cast(dates, pa.string())


def _iso_dates(values: pa.Array) -> pa.Array:
    shaped = pc.match_substring_regex(values, _ISO)
    parts = pc.split_pattern(pc.if_else(shaped, values, pa.scalar(None, pa.string())), "-")
    year = pc.list_element(parts, 0)
    iso = pc.binary_join_element_wise(
        year, _pad(pc.list_element(parts, 1), 2), _pad(pc.list_element(parts, 2), 2), "-"
    )
    return _real_dates(iso)


def _without_time(values: pa.Array) -> pa.Array:
    if not pc.any(pc.match_substring_regex(values, _TIME)).as_py():
        return values
    return pc.replace_substring_regex(values, _TIME, "")


def detect_date_format(values: pa.Array) -> str | None:
    """The one format the column's non-empty values fit (``iso``, ``mdy``, ``dmy``, ``excel``),
    or None when they fit none. Raises :class:`AmbiguousDates` when every slash date fits both
    month/day and day/month and two of them differ (03/04/2025)."""
    original, values = values, _without_time(values)
    present = pc.filter(values, pc.not_equal(values, ""))
    if len(present) == 0:
        return "iso"
    # ISO dates and months by name read the same in every format: the others decide (an Excel
    # column may hold date cells, read as ISO, and serial numbers pasted as values).
    present = pc.filter(present, pc.invert(pc.match_substring_regex(present, _ISO)))
    present = pc.filter(present, pc.invert(_named_month(present)))
    if len(present) == 0:
        return "iso"
    slash = pc.filter(present, pc.match_substring_regex(present, _SLASH))
    if len(slash):
        parts = pc.extract_regex(slash, _SLASH)
        a = pc.cast(pc.struct_field(parts, "a"), pa.int32())
        b = pc.cast(pc.struct_field(parts, "b"), pa.int32())
        if pc.any(pc.greater(a, 12)).as_py():
            return "dmy"
        if pc.any(pc.greater(b, 12)).as_py():
            return "mdy"
        differ = pc.not_equal(a, b)
        if pc.any(differ).as_py():
            example = pc.filter(slash, differ)[0].as_py()
            # Named as the file writes it (with its time of day, if any).
            raise AmbiguousDates(original[pc.index(values, example).as_py()].as_py())
        return "mdy"  # 1/1/2025, 3/3/2025: the same either way
    if pc.all(pc.match_substring_regex(present, _SERIAL)).as_py():
        return "excel"
    return None


def parse_dates(values: pa.Array, fmt: str) -> tuple[pa.Array, str | None]:
    """``(ISO text where understood, else the original text; the format used)``.

    ISO dates are always understood; ``auto`` detects the rest (:func:`detect_date_format`); a
    time of day after the date is dropped."""
    original = trimmed(values)
    values = _without_time(original)
    if fmt == "auto":
        fmt = detect_date_format(original) or "iso"
    canonical = pc.or_(pc.match_substring_regex(values, _CANONICAL_DATE), pc.equal(values, ""))
    if pc.all(canonical).as_py():
        return values, fmt  # the canonical text already: the importer checks the dates
    any_iso = pc.any(pc.match_substring_regex(values, _ISO)).as_py()
    iso = _iso_dates(values) if any_iso else pa.nulls(len(values), pa.string())
    if pc.any(_named_month(values)).as_py():
        iso = pc.coalesce(iso, _named_month_dates(values))
    if fmt in ("mdy", "dmy"):
        iso = pc.coalesce(iso, _slash_dates(values, fmt))
    elif fmt == "excel":
        iso = pc.coalesce(iso, _serial_dates(values))
    return _keep(original, iso, pc.is_valid(iso)), fmt


_DIGITS = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)(?:\.[0-9]*)?"
# 1234.5, $1,234.50, -$12, $-12, (12.50), ($12.50), $(12.50), 12.50-, $12.50-
_AMOUNT = (
    rf"^(?:(?:-\s*\$?|\$\s*-|\$)?\s*{_DIGITS}"
    rf"|\$?\s*\(\s*\$?\s*{_DIGITS}\s*\)"
    rf"|\$?\s*{_DIGITS}\s*-)$"
)
_NEGATIVE = r"^[-(]|^\$\s*[-(]|-$"
_PLAIN = r"^-?[0-9]+(?:\.[0-9]+)?$"


def parse_amounts(values: pa.Array) -> pa.Array:
    """Plain decimal text (``-1234.50``) where understood, else the original text."""
    values = trimmed(values)
    plain = pc.or_(pc.match_substring_regex(values, _PLAIN), pc.equal(values, ""))
    if pc.all(plain).as_py():
        return values  # the canonical text already (the usual quantity column)
    understood = pc.and_(
        pc.match_substring_regex(values, _AMOUNT), pc.match_substring_regex(values, "[0-9]")
    )
    negative = pc.match_substring_regex(values, _NEGATIVE)
    digits = pc.replace_substring(pc.utf8_trim(values, characters="$()- "), ",", "")
    digits = pc.replace_substring(digits, " ", "")
    digits = pc.utf8_rtrim(digits, characters=".")
    digits = pc.if_else(
        pc.starts_with(digits, "."), pc.binary_join_element_wise("0", digits, ""), digits
    )
    number = pc.if_else(negative, pc.binary_join_element_wise("-", digits, ""), digits)
    return _keep(values, number, understood)


def parse_booleans(values: pa.Array) -> pa.Array:
    """``true``/``false`` where the word is known, else the original text."""
    values = trimmed(values)
    lowered = pc.utf8_lower(values)
    is_true = pc.is_in(lowered, value_set=pa.array(TRUE_WORDS))
    is_false = pc.is_in(lowered, value_set=pa.array(FALSE_WORDS))
    canonical = pc.if_else(is_true, "true", "false")
    return _keep(values, canonical, pc.or_(is_true, is_false))


def parse_npis(values: pa.Array) -> pa.Array:
    """Spaces and dashes dropped (``1234-567 890`` is ``1234567890``)."""
    values = trimmed(values)
    if not pc.any(pc.match_substring_regex(values, r"[ -]")).as_py():
        return values
    return pc.replace_substring(pc.replace_substring(values, "-", ""), " ", "")


@dataclass(frozen=True)
class ColumnFormat:
    """How a canonical field's text is read: ``kind`` is text, date, amount, boolean or npi."""

    kind: str
    date_format: str = "auto"


def parse_column(values: pa.Array, fmt: ColumnFormat) -> tuple[pa.Array, str | None]:
    """The column's canonical text (and the date format used, for a date)."""
    if fmt.kind == "date":
        return parse_dates(values, fmt.date_format)
    if fmt.kind == "amount":
        return parse_amounts(values), None
    if fmt.kind == "boolean":
        return parse_booleans(values), None
    if fmt.kind == "npi":
        return parse_npis(values), None
    return trimmed(values), None
