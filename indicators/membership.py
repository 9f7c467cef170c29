"""Packing each case's population membership into two hex digits per indicator.

A case of an import gets one ``codes`` string: for indicator ``i`` the characters
``[2i, 2i+2)`` are one byte of flags. Pure functions over numpy arrays, so 1M cases × 10
indicators pack in well under a second; the same table decodes the byte back into the
populations and the reason a reviewer sees.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

# Bit per population; continuous variables reuse bits 1 and 2 for measure population (and its
# exclusion) so one byte serves all three kinds.
BITS = {
    "initial_population": 0,
    "denominator": 1,
    "denominator_exclusion": 2,
    "numerator": 3,
    "denominator_exception": 4,
    "numerator_exclusion": 5,
    "in_denominator": 6,
    "in_numerator": 7,
}
CV_BITS = {
    "initial_population": 0,
    "measure_population": 1,
    "measure_population_exclusion": 2,
    "in_denominator": 6,
    "in_numerator": 7,
}

_HEX_ASCII = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def flags_pack(cases: pd.DataFrame, *, kind: str) -> np.ndarray:
    """One uint8 of flags per case from a ``PopulationResult.cases`` frame."""
    bits = CV_BITS if kind == "continuous_variable" else BITS
    packed = np.zeros(len(cases), dtype=np.uint8)
    for name, bit in bits.items():
        packed |= cases[name].to_numpy(dtype=bool).astype(np.uint8) << np.uint8(bit)
    return packed


def codes_encode(flag_columns: Sequence[np.ndarray]) -> np.ndarray:
    """Per case, the ASCII hex of every indicator's flag byte (in indicator order), as a numpy
    bytes array (``S{2n}``): a lookup table over a uint8 matrix, no Python loop per case."""
    if not flag_columns:
        return np.array([], dtype="S1")
    matrix = np.stack([np.asarray(c, dtype=np.uint8) for c in flag_columns], axis=1)
    rows, width = matrix.shape
    out = np.empty((rows, 2 * width), dtype=np.uint8)
    out[:, 0::2] = _HEX_ASCII[matrix >> 4]
    out[:, 1::2] = _HEX_ASCII[matrix & 0x0F]
    return np.ascontiguousarray(out).view(f"S{2 * width}").ravel()


def code_byte(codes: str, index: int) -> int:
    return int(codes[2 * index : 2 * index + 2], 16)


def flags_decode(byte: int, *, kind: str) -> dict[str, bool]:
    bits = CV_BITS if kind == "continuous_variable" else BITS
    return {name: bool(byte >> bit & 1) for name, bit in bits.items()}


def _continuous_reason(f: dict[str, bool]) -> str:
    if not f["measure_population"]:
        return "not in measure population"
    if f["measure_population_exclusion"]:
        return "excluded: measure population exclusion"
    return "in measure population"


def _ratio_reason(f: dict[str, bool]) -> str:
    if f["numerator_exclusion"]:
        return "not in numerator: numerator exclusion"
    if not f["numerator"]:
        return "in denominator: numerator not met" if f["in_denominator"] else "not in denominator"
    return "in numerator"


def reason_of(byte: int, *, kind: str) -> str:
    """Why a case counts or not, in the words of spec section 3 (mirrors the engine's REASONS)."""
    f = flags_decode(byte, kind=kind)
    if not f["initial_population"]:
        return "not in initial population"
    if kind == "continuous_variable":
        return _continuous_reason(f)
    if kind == "ratio":
        return _ratio_reason(f)
    if not f["denominator"]:
        return "not in denominator"
    if f["denominator_exclusion"]:
        return "excluded: denominator exclusion"
    if f["denominator_exception"]:
        return "excepted: denominator exception (numerator not met)"
    if f["numerator_exclusion"]:
        return "not in numerator: numerator exclusion"
    if not f["numerator"]:
        return "in denominator: numerator not met"
    return "in numerator"


# Drill-down filters: name -> predicate over the decoded flags.
FILTERS = {
    "in_numerator": ("In numerator", lambda f: f["in_numerator"]),
    "in_denominator": ("In denominator", lambda f: f["in_denominator"]),
    "not_met": (
        "In denominator, numerator not met",
        lambda f: f["in_denominator"] and not f["in_numerator"],
    ),
    "excluded": (
        "Excluded or excepted",
        lambda f: f["initial_population"] and not f["in_denominator"],
    ),
    "not_in_population": ("Not in initial population", lambda f: not f["initial_population"]),
}


def codes_matching(filter_name: str, *, kind: str) -> list[str]:
    """Every two-digit code whose flags pass the drill-down filter."""
    _label, predicate = FILTERS[filter_name]
    return [f"{b:02x}" for b in range(256) if predicate(flags_decode(b, kind=kind))]
