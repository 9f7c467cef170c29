"""Criteria as data (spec section 3) and the populations of a measure (example D)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from indicators.criteria import (
    CriteriaDataError,
    CriteriaInvalid,
    FrameView,
    MeasureDataError,
    MeasureDefinition,
    criteria_evaluate,
    criteria_validate,
    measure_definition_validate,
    populations_evaluate,
    populations_evaluate_many,
    proportion_score,
)

EXAMPLE_D = Path("/work/shared/examples/example_d/cases.csv")

VTE = MeasureDefinition(
    kind="proportion",
    initial_population={
        "all": [
            {"field": "age", "op": ">=", "value": 18},
            {"field": "procedure", "op": "in", "value": ["TKA", "THA"]},
            {"field": "admission_type", "op": "=", "value": "elective"},
        ]
    },
    denominator={},
    denominator_exclusions={
        "any": [
            {"field": "comfort_care_only", "op": "is_true"},
            {"field": "anticoagulated_on_admission", "op": "is_true"},
        ]
    },
    numerator={"field": "prophylaxis_by_pod1", "op": "is_true"},
    denominator_exceptions={"field": "medical_reason_no_prophylaxis", "op": "not_null"},
)


def example_d(as_text: bool = True) -> pd.DataFrame:
    if as_text:
        # Every column as text, blanks as "": what an upload looks like before typing.
        return pd.read_csv(EXAMPLE_D, dtype=str, keep_default_na=False)
    return pd.read_csv(EXAMPLE_D, parse_dates=["discharge_date"])


def matches(tree, frame) -> list[int]:
    return [int(i) for i in np.flatnonzero(criteria_evaluate(tree, frame).to_numpy())]


# --- example D -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_text", [True, False], ids=["text-columns", "typed-columns"])
def test_example_d_scores_12_of_13(as_text):
    result = populations_evaluate(VTE, example_d(as_text))
    assert result.counts == {
        "initial_population": 16,
        "denominator": 16,
        "denominator_exclusion": 2,
        "numerator": 12,
        "denominator_exception": 1,
        "numerator_exclusion": 0,
    }
    assert result.score == Decimal(1200) / Decimal(13)
    assert result.display_score == Decimal("92.31")
    assert result.performance_denominator == 13


def test_example_d_keeps_a_case_with_a_reason_that_met_the_numerator():
    cases = populations_evaluate(VTE, example_d()).cases.set_index("case_id")
    # E08 has "bleeding risk noted" but got prophylaxis: it stays in numerator and denominator.
    assert cases.loc["E08", "in_numerator"]
    assert cases.loc["E08", "in_denominator"]
    assert not cases.loc["E08", "denominator_exception"]
    # E07 did not meet the numerator and has a reason: excepted.
    assert cases.loc["E07", "denominator_exception"]
    assert not cases.loc["E07", "in_denominator"]
    # E09 did not meet it and has no reason: a failure that counts.
    assert cases.loc["E09", "in_denominator"]
    assert not cases.loc["E09", "in_numerator"]


def test_example_d_engine_does_not_drop_every_case_with_a_reason():
    frame = example_d()
    # The naive rule removes every case with a reason recorded, met numerator or not.
    naive = MeasureDefinition(
        initial_population=VTE.initial_population,
        denominator_exclusions={
            "any": [*VTE.denominator_exclusions["any"], VTE.denominator_exceptions]
        },
        numerator=VTE.numerator,
    )
    wrong = populations_evaluate(naive, frame)
    assert wrong.display_score == Decimal("91.67")
    assert wrong.score == Decimal(1100) / Decimal(12)
    right = populations_evaluate(VTE, frame)
    assert right.display_score == Decimal("92.31")
    assert right.score != wrong.score


def test_example_d_reasons_explain_every_case():
    cases = populations_evaluate(VTE, example_d()).cases.set_index("case_id")
    reasons = cases["reason"].astype(str)
    assert reasons["E02"] == "not in initial population"
    assert reasons["E03"] == "excluded: denominator exclusion"
    assert reasons["E04"] == "excluded: denominator exclusion"
    assert reasons["E07"].startswith("excepted: denominator exception")
    assert reasons["E09"] == "in denominator: numerator not met"
    assert reasons["E01"] == "in numerator"
    assert int(cases["in_denominator"].sum()) == 13
    assert int(cases["in_numerator"].sum()) == 12


# --- population rules ---------------------------------------------------------------------


def test_a_zero_denominator_gives_no_score_not_zero_or_100():
    frame = example_d()
    nobody = MeasureDefinition(
        initial_population={"field": "age", "op": ">", "value": 200}, numerator=VTE.numerator
    )
    result = populations_evaluate(nobody, frame)
    assert result.score is None
    assert result.display_score is None
    assert result.to_dict()["score"] is None


def test_numerator_exclusions_leave_the_case_in_the_denominator():
    definition = MeasureDefinition(
        initial_population=VTE.initial_population,
        denominator_exclusions=VTE.denominator_exclusions,
        numerator=VTE.numerator,
        denominator_exceptions=VTE.denominator_exceptions,
        numerator_exclusions={"field": "case_id", "op": "in", "value": ["E01", "E05"]},
    )
    result = populations_evaluate(definition, example_d())
    assert result.counts["numerator_exclusion"] == 2
    assert result.score == Decimal(1000) / Decimal(13)


def test_duplicate_case_ids_are_an_error():
    frame = pd.concat([example_d(), example_d().head(2)], ignore_index=True)
    with pytest.raises(MeasureDataError, match="duplicate case_id: E01, E02"):
        populations_evaluate(VTE, frame)


def test_a_missing_required_field_is_an_error():
    frame = example_d().drop(columns=["prophylaxis_by_pod1"])
    with pytest.raises(CriteriaDataError, match="prophylaxis_by_pod1"):
        populations_evaluate(VTE, frame)


def test_ratio_per_1000_line_days():
    frame = pd.DataFrame(
        {
            "case_id": ["a", "b", "c", "d"],
            "central_line": ["true", "true", "true", "false"],
            "line_days": ["400", "350", "250", ""],
            "clabsi": ["true", "false", "true", "false"],
        }
    )
    definition = MeasureDefinition(
        kind="ratio",
        initial_population={"field": "central_line", "op": "is_true"},
        numerator={"field": "clabsi", "op": "is_true"},
        denominator_value_field="line_days",
        multiplier=Decimal(1000),
    )
    result = populations_evaluate(definition, frame)
    assert result.numerator_value == 2
    assert result.denominator_value == Decimal(1000)
    assert result.score == Decimal(2)


@pytest.mark.parametrize(("aggregate", "expected"), [("median", "2"), ("mean", "2.5")])
def test_continuous_variable_aggregates_the_measure_population(aggregate, expected):
    frame = pd.DataFrame(
        {
            "case_id": ["a", "b", "c", "d", "e"],
            "los_days": [1, 2, 2, 5, 30],
            "transfer": [False, False, False, False, True],
        }
    )
    definition = MeasureDefinition(
        kind="continuous_variable",
        measure_population={"field": "transfer", "op": "is_false"},
        observation_field="los_days",
        aggregate=aggregate,
    )
    result = populations_evaluate(definition, frame)
    assert result.counts["measure_population"] == 4
    assert result.score == Decimal(expected)
    assert result.performance_denominator == 4


def test_continuous_variable_refuses_a_missing_observation():
    frame = pd.DataFrame({"case_id": ["a", "b"], "los_days": ["1.5", ""]})
    definition = MeasureDefinition(kind="continuous_variable", observation_field="los_days")
    with pytest.raises(MeasureDataError, match="no los_days: b"):
        populations_evaluate(definition, frame)


def test_definition_validation_names_the_population():
    definition = MeasureDefinition(numerator={"field": "x", "op": "~="})
    errors = measure_definition_validate(definition)
    assert [e.path for e in errors] == ["numerator.op"]
    with pytest.raises(CriteriaInvalid):
        populations_evaluate(definition, example_d())
    assert measure_definition_validate(MeasureDefinition())[0].path == "numerator"


# --- operators ------------------------------------------------------------------------------

FRAME = pd.DataFrame(
    {
        "age": ["17", "18", "65", "", "90"],
        "name": ["Knee", "hip", None, "knee revision", "Hip"],
        "flag": ["true", "FALSE", "", "yes", "0"],
        "admit": ["2025-01-01", "2025-01-10", "2025-02-01", "", "2025-03-01"],
        "discharge": ["2025-01-05", "2025-01-12", "2025-02-20", "2025-02-02", ""],
        "readmit": ["2025-01-20", "2025-03-01", "2025-03-22", "2025-02-03", "2025-03-05"],
        "cost": [10, 20, 30, None, 50],
    }
)


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"field": "age", "op": ">=", "value": 18}, [1, 2, 4]),
        ({"field": "age", "op": ">=", "value": "18"}, [1, 2, 4]),
        ({"field": "age", "op": "<", "value": 18}, [0]),
        ({"field": "age", "op": "=", "value": 65}, [2]),
        ({"field": "age", "op": "!=", "value": 65}, [0, 1, 4]),
        ({"field": "age", "op": "between", "value": [18, 65]}, [1, 2]),
        ({"field": "age", "op": "in", "value": [17, 90]}, [0, 4]),
        ({"field": "age", "op": "not_in", "value": [17, 90]}, [1, 2]),
        ({"field": "age", "op": "is_null"}, [3]),
        ({"field": "age", "op": "not_null"}, [0, 1, 2, 4]),
        ({"field": "name", "op": "=", "value": "hip"}, [1]),
        ({"field": "name", "op": "contains", "value": "KNEE"}, [0, 3]),
        ({"field": "name", "op": "is_null"}, [2]),
        ({"field": "name", "op": "not_in", "value": ["hip"]}, [0, 3, 4]),
        ({"field": "flag", "op": "is_true"}, [0, 3]),
        ({"field": "flag", "op": "is_false"}, [1, 4]),
        ({"field": "flag", "op": "=", "value": True}, [0, 3]),
        ({"field": "admit", "op": ">=", "value": "2025-01-10"}, [1, 2, 4]),
        ({"field": "admit", "op": "<", "value": dt.date(2025, 2, 1)}, [0, 1]),
        ({"field": "admit", "op": "between", "value": ["2025-01-01", "2025-02-01"]}, [0, 1, 2]),
        ({"field": "cost", "op": ">", "value": Decimal("19.99")}, [1, 2, 4]),
        ({"field": "cost", "op": "is_null"}, [3]),
        (
            {"field": "readmit", "op": "within_days", "value": 30, "of": "discharge"},
            [0, 2, 3],
        ),
        (
            {
                "field": "admit",
                "op": "within_days",
                "value": 5,
                "of": "discharge",
                "direction": "before",
            },
            [0, 1],
        ),  # fmt: skip
        ({"field": "admit", "op": "<", "value_field": "discharge"}, [0, 1, 2]),
        ({"field": "discharge", "op": ">=", "value_field": "readmit"}, []),
        (
            {
                "all": [
                    {"field": "age", "op": ">=", "value": 18},
                    {"field": "flag", "op": "is_false"},
                ]
            },
            [1, 4],
        ),  # fmt: skip
        (
            {
                "any": [
                    {"field": "age", "op": "<", "value": 18},
                    {"field": "name", "op": "=", "value": "Hip"},
                ]
            },
            [0, 4],
        ),  # fmt: skip
        ({"not": {"field": "age", "op": ">=", "value": 18}}, [0, 3]),
        ({}, [0, 1, 2, 3, 4]),
        (None, [0, 1, 2, 3, 4]),
        ({"all": []}, [0, 1, 2, 3, 4]),
        ({"any": []}, []),
    ],
)
def test_operators(tree, expected):
    assert matches(tree, FRAME) == expected


def test_nulls_never_match_a_comparison():
    for op in ("=", "!=", ">", ">=", "<", "<="):
        hits = criteria_evaluate({"field": "age", "op": op, "value": 40}, FRAME)
        assert not hits.iloc[3], op
    assert not criteria_evaluate({"field": "flag", "op": "is_false"}, FRAME).iloc[2]


def test_the_result_keeps_the_frame_index():
    frame = FRAME.set_index(pd.Index(list("vwxyz")))
    hits = criteria_evaluate({"field": "age", "op": ">=", "value": 18}, frame)
    assert list(hits[hits].index) == ["w", "x", "z"]
    assert hits.dtype == bool


def test_a_forced_type_reads_the_column_that_way():
    frame = pd.DataFrame({"code": ["9", "10", "100"]})
    as_text = {"field": "code", "op": ">", "value": "9", "type": "string"}
    assert matches(as_text, frame) == []
    assert matches({**as_text, "type": "number"}, frame) == [1, 2]


def test_numbers_that_are_not_numbers_are_a_clear_error():
    frame = pd.DataFrame({"age": ["40", "forty", "50", "n/a"]})
    with pytest.raises(
        CriteriaDataError, match=r"'age' has 2 value\(s\) that are not numbers.*'forty'"
    ):
        criteria_evaluate({"field": "age", "op": ">", "value": 18}, frame)


def test_booleans_that_are_not_booleans_are_a_clear_error():
    frame = pd.DataFrame({"flag": ["true", "maybe"]})
    with pytest.raises(CriteriaDataError, match="not true/false, e.g. 'maybe'"):
        criteria_evaluate({"field": "flag", "op": "is_true"}, frame)


def test_dates_that_are_not_dates_are_a_clear_error():
    frame = pd.DataFrame({"d": ["2025-01-01", "01/02/2025x"]})
    with pytest.raises(CriteriaDataError, match="not ISO dates"):
        criteria_evaluate({"field": "d", "op": ">", "value": "2025-01-01"}, frame)


def test_evaluate_refuses_an_invalid_tree():
    with pytest.raises(CriteriaInvalid) as info:
        criteria_evaluate({"field": "age", "op": "LIKE", "value": 1}, FRAME)
    assert info.value.errors[0].path == "$.op"


def test_it_never_executes_values_as_code():
    frame = pd.DataFrame({"name": ["__import__('os').system('true')", "x"]})
    tree = {"field": "name", "op": "=", "value": "__import__('os').system('true')"}
    assert matches(tree, frame) == [0]


# --- validation -----------------------------------------------------------------------------

FIELDS = {"age": "integer", "procedure": "string", "discharge_date": "date", "flag": "boolean"}


@pytest.mark.parametrize(
    ("tree", "path", "fragment"),
    [
        ({"field": "age", "op": "~", "value": 1}, "$.op", "unknown operator"),
        ({"field": "agee", "op": "=", "value": 1}, "$.field", "unknown field 'agee'"),
        ({"field": "age", "op": "=", "value": "old"}, "$.value", "'old' is not a number"),
        ({"field": "age", "op": "=", "value": [1, 2]}, "$.value", "single value"),
        ({"field": "age", "op": "in", "value": 3}, "$.value", "non-empty list"),
        ({"field": "age", "op": "between", "value": [65, 18]}, "$.value", "above high"),
        ({"field": "age", "op": "between", "value": [1]}, "$.value", "[low, high]"),
        ({"field": "age", "op": "is_null", "value": 1}, "$.value", "takes no value"),
        ({"field": "age", "op": "is_true"}, "$.op", "needs a boolean field"),
        ({"field": "age", "op": "contains", "value": "1"}, "$.op", "needs a text field"),
        ({"field": "age", "op": ">"}, "$", "needs a 'value'"),
        (
            {"field": "discharge_date", "op": "within_days", "value": -1, "of": "discharge_date"},
            "$.value",
            "whole number",
        ),  # fmt: skip
        ({"field": "discharge_date", "op": "within_days", "value": 30}, "$", "needs 'of'"),
        (
            {"field": "discharge_date", "op": "within_days", "value": 3, "of": "age"},
            "$.of",
            "not a date field",
        ),  # fmt: skip
        ({"field": "age", "op": "<", "value_field": "procedure"}, "$", "cannot compare"),
        ({"field": "age", "op": "<", "value": 1, "value_field": "age"}, "$", "not both"),
        ({"field": "age", "op": "=", "value": 1, "colour": "red"}, "$", "unknown keys"),
        ({"all": {"field": "age"}}, "$.all", "list of conditions"),
        ({"all": [], "any": []}, "$", "exactly one key"),
        (
            {"any": [{"field": "age", "op": ">", "value": 1}, "age > 1"]},
            "$.any[1]",
            "expected an object",
        ),  # fmt: skip
        ({"not": {"all": [{"op": "="}]}}, "$.not.all[0]", "missing 'field'"),
    ],
)
def test_validation_reports_path_and_message(tree, path, fragment):
    errors = criteria_validate(tree, fields=FIELDS)
    assert errors, tree
    assert any(e.path == path and fragment in e.message for e in errors), errors


def test_validation_without_fields_only_checks_shape():
    assert criteria_validate({"field": "anything", "op": "=", "value": "x"}, fields=None) == []
    assert criteria_validate(VTE.initial_population, fields=None) == []


def test_validation_accepts_a_valid_tree_with_fields():
    fields = dict.fromkeys(example_d().columns, "string") | {"age": "integer"}
    for flag in ("comfort_care_only", "anticoagulated_on_admission", "prophylaxis_by_pod1"):
        fields[flag] = "boolean"
    for name, tree in VTE.criteria_items():
        assert criteria_validate(tree, fields=fields) == [], name
    assert measure_definition_validate(VTE, fields=fields) == []


# --- volume ----------------------------------------------------------------------------------


def test_ten_definitions_over_ten_thousand_rows_match_a_per_row_reading():
    rng = np.random.default_rng(7)
    n = 10_000
    frame = pd.DataFrame(
        {
            "case_id": np.arange(n).astype(str),
            "age": rng.integers(10, 90, n).astype(str),
            "procedure": rng.choice(["TKA", "THA", "CABG"], n),
            "admission_type": rng.choice(["elective", "urgent"], n),
            "comfort_care_only": rng.choice(["true", "false"], n, p=[0.05, 0.95]),
            "anticoagulated_on_admission": rng.choice(["true", "false"], n, p=[0.05, 0.95]),
            "prophylaxis_by_pod1": rng.choice(["true", "false"], n, p=[0.9, 0.1]),
            "medical_reason_no_prophylaxis": rng.choice(["", "bleeding"], n, p=[0.9, 0.1]),
        }
    )
    # Speed is measured in bench/indicators_bench.py, not asserted here.
    results = populations_evaluate_many({f"m{i}": VTE for i in range(10)}, frame)
    # The vectorised result agrees with a plain per-row reading of the rules.
    ipp = (
        (frame.age.astype(int) >= 18)
        & frame.procedure.isin(["TKA", "THA"])
        & (frame.admission_type == "elective")
    )
    denex = ipp & (
        (frame.comfort_care_only == "true") | (frame.anticoagulated_on_admission == "true")
    )
    numer = ipp & ~denex & (frame.prophylaxis_by_pod1 == "true")
    excep = ipp & ~denex & ~numer & (frame.medical_reason_no_prophylaxis != "")
    expected = Decimal(int(numer.sum()) * 100) / Decimal(int((ipp & ~denex & ~excep).sum()))
    assert all(r.score == expected for r in results.values())


def test_a_view_reads_each_column_once():
    view = FrameView(example_d())
    populations_evaluate(VTE, view)
    cached = dict(view._cache)
    populations_evaluate(VTE, view)
    assert all(view._cache[k] is v for k, v in cached.items())


# --- aggregate entry ------------------------------------------------------------------------


def test_aggregate_counts_give_the_same_score_as_the_case_rows():
    cases = populations_evaluate(VTE, example_d())
    counts = cases.counts
    score = proportion_score(
        numerator=counts["numerator"],
        denominator=counts["denominator"],
        denominator_exclusions=counts["denominator_exclusion"],
        denominator_exceptions=counts["denominator_exception"],
        numerator_exclusions=counts["numerator_exclusion"],
    )
    assert score == cases.score == Decimal(1200) / Decimal(13)
    assert proportion_score(numerator=0, denominator=0) is None


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"numerator": 14, "denominator": 13}, "above the denominator"),
        ({"numerator": 12, "denominator": 16, "denominator_exclusions": 5}, "above the denom"),
        ({"numerator": 1, "denominator": 2, "denominator_exceptions": 3}, "exceed the denom"),
        ({"numerator": 1, "denominator": 2, "numerator_exclusions": 2}, "exceed the numerator"),
        ({"numerator": -1, "denominator": 2}, "whole number"),
        ({"numerator": 1.0, "denominator": 2}, "whole number"),
    ],
)
def test_aggregate_counts_that_cannot_be_true_are_an_error(counts, message):
    with pytest.raises(MeasureDataError, match=message):
        proportion_score(**counts)


@pytest.mark.parametrize(
    ("aggregate", "observations", "expected"),
    [
        # 0.1 + 0.2 + 0.3 is 0.6000000000000001 in binary floating point.
        ("mean", ["0.1", "0.2", "0.3"], "0.2"),
        ("mean", ["1.15", "2.3", "4.5", "0.05"], "2"),
        ("median", ["2.3", "1.9", "2.1", "2.0"], "2.05"),
        ("median", ["2.3", "1.9", "2.1"], "2.1"),
        # More decimals than the fast path scales: still exact, value by value.
        ("mean", ["0.10000001", "0.20000002"], "0.150000015"),
        ("median", ["0.10000001", "0.20000002"], "0.150000015"),
    ],
)
def test_continuous_variable_aggregates_decimals_exactly(aggregate, observations, expected):
    frame = pd.DataFrame(
        {"case_id": [f"c{i}" for i in range(len(observations))], "los_days": observations}
    )
    definition = MeasureDefinition(
        kind="continuous_variable", observation_field="los_days", aggregate=aggregate
    )
    assert populations_evaluate(definition, frame).score == Decimal(expected)


def test_ratio_sums_decimal_values_exactly():
    frame = pd.DataFrame(
        {
            "case_id": ["a", "b", "c"],
            "central_line": [True] * 3,
            "clabsi": [True, False, False],
            "line_days": ["0.1", "0.2", "0.3"],
        }
    )
    definition = MeasureDefinition(
        kind="ratio",
        initial_population={"field": "central_line", "op": "is_true"},
        numerator={"field": "clabsi", "op": "is_true"},
        denominator_value_field="line_days",
    )
    assert populations_evaluate(definition, frame).denominator_value == Decimal("0.6")
