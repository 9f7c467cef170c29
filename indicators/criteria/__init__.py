"""Population criteria stored as data and evaluated vectorised over a frame of cases.

Spec section 3: criteria are structured data (field, operator, value, combined with all/any),
never code that gets executed, and every case's membership of every population is kept so a
reviewer can drill from a score down to the cases behind it.

A criteria tree is plain JSON:

* leaf: ``{"field": "age", "op": ">=", "value": 18}``
* leaf against another column: ``{"field": "admit_date", "op": "<", "value_field": "cutoff"}``
* date window: ``{"field": "readmit_date", "op": "within_days", "value": 30,
  "of": "discharge_date"}`` (``"direction"``: ``after`` (default), ``before`` or ``either``)
* groups: ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": {...}}``
* an empty tree (``{}`` or ``None``) matches every row.

A leaf may force how its column is read with ``"type"``: ``string``, ``number``, ``boolean``
or ``date``; otherwise the column's dtype decides, and for text columns (CSV) the operator and
value do (``{"op": ">=", "value": 18}`` reads the column as numbers).

Text matching: ``=``, ``!=`` and ``in`` compare text exactly (case matters: codes such as
``TKA`` are codes); ``contains`` ignores case (it searches free text).

Null semantics: a null never matches a comparison (``=``, ``!=``, ``in``, ``not_in``,
``between``, ``contains``, the field-to-field and date-window operators, ``is_true`` and
``is_false``); only ``is_null`` matches it. In text columns a blank string is a null (a CSV cell
left empty). ``not`` negates the match, so ``{"not": {"field": "age", "op": ">=",
"value": 18}}`` does match a row with no age; write ``{"field": "age", "op": "<", "value": 18}``
to keep such rows out.

The package re-exports the public names of its modules, so ``from indicators.criteria import X``
keeps working: ``validation`` (the vocabulary, the errors, checking a tree), ``evaluation``
(reading columns, evaluating a tree over a frame), ``measures`` (measure definitions and their
populations, spec section 3).
"""

from __future__ import annotations

from .evaluation import FrameView, criteria_evaluate, criteria_mask
from .measures import (
    CV_POPULATIONS,
    POPULATION_KEYS,
    POPULATIONS,
    REASONS,
    MeasureDataError,
    MeasureDefinition,
    MeasureKind,
    PopulationResult,
    measure_definition_validate,
    populations_evaluate,
    populations_evaluate_many,
    proportion_score,
)
from .validation import (
    COMPARISON_OPS,
    GROUP_KEYS,
    KINDS,
    LEAF_KEYS,
    LIST_OPS,
    NULLARY_OPS,
    OPERATORS,
    ORDERING_OPS,
    WITHIN_DIRECTIONS,
    Criteria,
    CriteriaDataError,
    CriteriaError,
    CriteriaInvalid,
    criteria_fields,
    criteria_validate,
)

__all__ = [
    "COMPARISON_OPS",
    "CV_POPULATIONS",
    "Criteria",
    "CriteriaDataError",
    "CriteriaError",
    "CriteriaInvalid",
    "FrameView",
    "GROUP_KEYS",
    "KINDS",
    "LEAF_KEYS",
    "LIST_OPS",
    "MeasureDataError",
    "MeasureDefinition",
    "MeasureKind",
    "NULLARY_OPS",
    "OPERATORS",
    "ORDERING_OPS",
    "POPULATIONS",
    "POPULATION_KEYS",
    "PopulationResult",
    "REASONS",
    "WITHIN_DIRECTIONS",
    "criteria_evaluate",
    "criteria_fields",
    "criteria_mask",
    "criteria_validate",
    "measure_definition_validate",
    "populations_evaluate",
    "populations_evaluate_many",
    "proportion_score",
]
