"""Services: definitions, aggregate entry, case-file imports (example D), the incentive
(example C with every policy and tier mode), key indicators, action plans."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django_scopes import scopes_disabled

from agreements.models import AgreementStatus
from indicators import services
from indicators.casefile import CaseFileRefused
from indicators.models import CaseMembership, IndicatorResult
from indicators.scoring import TermsInvalid
from tests.indicators.conftest import EXAMPLE_D, example_c_results, ortho_build

D = Decimal
pytestmark = pytest.mark.django_db


def _import(o, data: bytes, *, name="cases.csv", keys=("vte_prophylaxis",), period=None):  # type: ignore[no-untyped-def]
    with scopes_disabled():
        ci = services.case_import_create(
            agreement=o.agreement,
            programme_year=o.year,
            period=period or o.annual,
            data=data,
            filename=name,
            user=None,
            indicator_keys=list(keys),
        )
        return services.case_import_apply(case_import=ci)


def test_example_d_file_scores_92_31_with_the_exception_only_when_numerator_not_met(ortho, media):
    outcome = _import(ortho, EXAMPLE_D.read_bytes())
    result = outcome.results[0]
    assert result.display_value == D("92.31")
    assert (result.numerator, result.denominator, result.case_count) == (D(12), D(13), 13)
    assert result.counts == {
        "initial_population": 16,
        "denominator": 16,
        "denominator_exclusion": 2,
        "numerator": 12,
        "denominator_exception": 1,
        "numerator_exclusion": 0,
    }
    with scopes_disabled():
        rows = {
            m.case_id: m for m in CaseMembership.objects.filter(case_import=outcome.case_import)
        }
        from indicators.membership import code_byte, reason_of

        reasons = {
            cid: reason_of(code_byte(m.codes, 0), kind="proportion") for cid, m in rows.items()
        }
    assert len(rows) == 17
    assert reasons["E02"] == "not in initial population"
    assert reasons["E03"] == "excluded: denominator exclusion"
    assert reasons["E07"] == "excepted: denominator exception (numerator not met)"
    assert reasons["E08"] == "in numerator"  # a reason recorded but the numerator met: stays
    assert reasons["E09"] == "in denominator: numerator not met"


def test_zero_denominator_gives_no_score(ortho, media):
    data = (
        b"case_id,age,procedure,admission_type,discharge_date,comfort_care_only,"
        b"anticoagulated_on_admission,prophylaxis_by_pod1,medical_reason_no_prophylaxis\n"
        b"X1,17,TKA,elective,2025-03-01,false,false,true,\n"
    )
    result = _import(ortho, data).results[0]
    assert result.value is None and result.case_count == 0


BAD_FILES = {
    "duplicate ids": (b"E01", b"E02", "duplicate case id 'E01'"),
    "non-numeric age": (b"E01,42,", b"E01,forty,", "'forty' is not a number"),
    "date outside period": (b"2025-02-11", b"2024-12-31", "outside the period"),
    "bad boolean": (
        b"E05,50,TKA,elective,2025-06-15,false,false,true",
        b"E05,50,TKA,elective,2025-06-15,false,false,maybe",
        "not true or false",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_files_are_refused_whole_with_row_and_column(ortho, media, case):
    old, new, message = BAD_FILES[case]
    data = EXAMPLE_D.read_bytes()
    if case == "duplicate ids":
        data = data.replace(b"\nE02,", b"\nE01,")
    else:
        data = data.replace(old, new, 1)
    _import(ortho, EXAMPLE_D.read_bytes())  # a good import first: it must stay as it was
    with scopes_disabled():
        before = (IndicatorResult.objects.count(), CaseMembership.objects.count())
    with pytest.raises(CaseFileRefused) as refused:
        _import(ortho, data)
    problems = refused.value.problems
    assert problems.total >= 1
    assert any(message in p.message and p.row is not None and p.column for p in problems.items)
    with scopes_disabled():
        assert (IndicatorResult.objects.count(), CaseMembership.objects.count()) == before


def test_missing_column_and_wrong_encoding_are_refused(ortho, media):
    data = EXAMPLE_D.read_bytes().replace(b",prophylaxis_by_pod1", b",prophylaxis")
    with pytest.raises(CaseFileRefused) as refused:
        _import(ortho, data)
    assert any(
        p.column == "prophylaxis_by_pod1" and "missing" in p.message
        for p in refused.value.problems.items
    )
    latin1 = EXAMPLE_D.read_text().replace("active bleeding", "hémorragie").encode("latin-1")
    with pytest.raises(CaseFileRefused) as refused:
        _import(ortho, latin1)
    problem = refused.value.problems.items[0]
    assert "UTF-8" in problem.message and problem.row == 8


def test_first_100_problems_kept_and_total_counted(ortho, media):
    header = EXAMPLE_D.read_bytes().split(b"\n")[0]
    rows = [f"C{i},abc,TKA,elective,2025-03-01,false,false,true,".encode() for i in range(250)]
    with pytest.raises(CaseFileRefused) as refused:
        _import(ortho, b"\n".join([header, *rows]))
    assert refused.value.problems.total == 250
    assert len(refused.value.problems.items) == 100


def test_reimport_of_a_changed_file_makes_a_new_version_recording_the_change(ortho, media):
    first = _import(ortho, EXAMPLE_D.read_bytes()).results[0]
    changed = EXAMPLE_D.read_bytes().replace(
        b"E09,58,TKA,elective,2025-10-19,false,false,false",
        b"E09,58,TKA,elective,2025-10-19,false,false,true",
    )
    second = _import(ortho, changed).results[0]
    assert second.version == 2 and second.previous_id == first.pk
    assert second.changes["value"][0].startswith("92.3076")
    assert second.changes["numerator"] == ["12.0000", "13"]
    with scopes_disabled():
        first.refresh_from_db()
    assert not first.is_current and second.is_current


def test_xlsx_files_are_read_too(ortho, media, tmp_path):
    import pandas as pd

    path = tmp_path / "cases.xlsx"
    pd.read_csv(EXAMPLE_D, dtype=str).to_excel(path, index=False)
    result = _import(ortho, path.read_bytes(), name="cases.xlsx").results[0]
    assert result.display_value == D("92.31")


# --- the incentive -------------------------------------------------------------------------


def test_example_c_redistribute(ortho):
    example_c_results(ortho)
    with scopes_disabled():
        computation = services.incentive_for_year(programme_year=ortho.year)
    result = computation.result
    assert result.earned_total == D("300000.00")
    assert [o.earned for o in result.indicators] == [
        D("88235.29"),
        D("70588.24"),
        D("94117.65"),
        D("47058.82"),
        D("0.00"),
    ]
    readmission = result.outcome("readmission_30d")
    assert readmission.status == "insufficient_denominator"
    assert readmission.policy_applied == "redistribute"
    assert computation.inputs["terms"]["small_denominator_policy"] == "redistribute"
    assert computation.inputs["results"]["vte_prophylaxis"]["denominator"] == 13
    import json

    json.dumps(computation.inputs)  # serialisable
    assert len(computation.inputs_checksum()) == 64


@pytest.mark.parametrize(
    ("policy", "total", "parts"),
    [
        ("zero", "255000.00", None),
        (
            "hold_harmless",
            "300000.00",
            ["75000.00", "60000.00", "80000.00", "40000.00", "45000.00"],
        ),
    ],
)
def test_example_c_other_policies(world, policy, total, parts):
    o = ortho_build(world.org, policy=policy)
    example_c_results(o)
    with scopes_disabled():
        result = services.incentive_for_year(programme_year=o.year).result
    assert result.earned_total == D(total)
    if parts:
        assert [str(x.earned) for x in result.indicators] == parts


def test_vte_from_the_example_d_import_feeds_example_c(ortho, media):
    example_c_results(ortho, with_vte=False)
    _import(ortho, EXAMPLE_D.read_bytes())
    with scopes_disabled():
        computation = services.incentive_for_year(programme_year=ortho.year)
    assert computation.result.earned_total == D("300000.00")
    vte = computation.inputs["results"]["vte_prophylaxis"]
    assert vte["source"] == "case_file" and len(vte["source_sha256"]) == 64


def test_linear_mode_interpolates(world):
    o = ortho_build(world.org, tier_mode="linear")
    example_c_results(o)
    with scopes_disabled():
        result = services.incentive_for_year(programme_year=o.year).result
    # VTE 92.31 between 90 @ 50% and 95 @ 75%: 50 + 25 × 2.3077/5 = 61.54%
    assert result.outcome("vte_prophylaxis").payout_pct.quantize(D("0.01")) == D("61.54")
    assert result.tier_mode == "linear"


def test_overrides_change_nothing_stored(ortho):
    example_c_results(ortho)
    with scopes_disabled():
        what_if = services.incentive_for_year(
            programme_year=ortho.year,
            overrides={
                "small_denominator_policy": "zero",
                "results": {"vte_prophylaxis": {"score": "96", "denominator": 13}},
            },
        )
        assert what_if.inputs["results"]["vte_prophylaxis"]["overridden"] is True
        plain = services.incentive_for_year(programme_year=ortho.year)
    # zero policy, VTE now at target (75%): 400000 × (18.75+15+20+15)/100 = 275,000.00
    assert what_if.result.earned_total == D("275000.00")
    assert plain.result.earned_total == D("300000.00")


def test_missing_annual_result_is_reported(ortho):
    example_c_results(ortho, with_vte=False)
    with scopes_disabled(), pytest.raises(services.IndicatorDataMissing) as missing:
        services.incentive_for_year(programme_year=ortho.year)
    assert "VTE" in str(missing.value)


def test_weights_not_summing_to_100_are_refused(ortho):
    example_c_results(ortho)
    with scopes_disabled():
        d = ortho.definitions["ssi_joint"]
        d.weight = D(20)
        services.definition_save(definition=d)
        assert "weights must sum to exactly 100" in services.definitions_check(terms=ortho.terms)[0]
        with pytest.raises(TermsInvalid):
            services.incentive_for_year(programme_year=ortho.year)


def test_projection_uses_interim_results(ortho):
    with scopes_disabled():
        services.result_record(
            definition=ortho.definitions["ssi_joint"],
            programme_year=ortho.year,
            period=ortho.quarter(1),
            numerator=D(13),
            denominator=D(1000),
            source_note="Q1",
        )
        projection = services.incentive_projection(programme_year=ortho.year)
    assert projection.result.is_projection
    assert projection.result.outcome("ssi_joint").tier_met == "target"
    assert projection.result.outcome("median_los").status == "no_score"


# --- definitions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"threshold": D("1.0"), "stretch": D("1.8")}, "stretch", "lower is better"),
        ({"target_payout": D("40")}, "target_payout", "must not fall"),
        ({"stretch_payout": D("120")}, "stretch_payout", "between 0 and 100"),
        (
            {"populations": {"numerator": {"field": "nope", "op": "is_true"}}},
            "populations",
            "unknown field",
        ),
        (
            {"populations": {"numerator": {"field": "ssi_within_90_days", "op": "~"}}},
            "populations",
            "unknown operator",
        ),
    ],
)
def test_definition_validation(ortho, changes, field, message):
    with scopes_disabled():
        d = ortho.definitions["ssi_joint"]
        for name, value in changes.items():
            setattr(d, name, value)
        with pytest.raises(ValidationError) as error:
            services.definition_save(definition=d)
    assert any(message in m for m in error.value.message_dict[field])


def test_executed_agreement_freezes_definitions(ortho):
    with scopes_disabled():
        ortho.agreement.status = AgreementStatus.EXECUTED
        ortho.agreement.save()
        d = ortho.definitions["ssi_joint"]
        d.refresh_from_db()
        d.name = "changed"
        with pytest.raises(ValidationError) as error:
            services.definition_save(definition=d)
    assert "frozen" in str(error.value)


def test_amendment_versions_the_definitions(ortho):
    import datetime as dt

    from agreements.models import ProgrammeYear
    from indicators.selectors import definitions_in_force
    from tests import factories as f

    with scopes_disabled():
        v2 = f.TermsFactory(
            agreement=ortho.agreement, version=2, effective_from=dt.date(2026, 1, 1)
        )
        copies = services.definitions_copy_to_terms(source=ortho.terms, target=v2)
        copies[0].threshold, copies[0].target, copies[0].stretch = D("1.6"), D("1.2"), D("0.9")
        services.definition_save(definition=copies[0])
        year2 = ProgrammeYear.objects.create(
            organization=ortho.agreement.organization,
            agreement=ortho.agreement,
            number=2,
            start=dt.date(2026, 1, 1),
            end=dt.date(2026, 12, 31),
        )
        y1 = definitions_in_force(programme_year=ortho.year)
        y2 = definitions_in_force(programme_year=year2)
    assert y1[0].target == D("1.4") and y2[0].target == D("1.2")
    assert {d.terms_id for d in y2} == {v2.pk}


def test_aggregate_entry_refuses_numerator_above_denominator(ortho):
    with scopes_disabled(), pytest.raises(ValidationError) as error:
        services.result_record(
            definition=ortho.definitions["ssi_joint"],
            programme_year=ortho.year,
            period=ortho.annual,
            numerator=D(8),
            denominator=D(5),
            source_note="x",
        )
    assert "above the denominator" in str(error.value)


# --- key indicators and action plans -------------------------------------------------------


def test_key_indicator_outcomes_for_the_quality_gate(ortho):
    example_c_results(ortho)
    with scopes_disabled():
        d = ortho.definitions["readmission_30d"]
        d.baseline_value = D("5.3")
        d.save()
        outcomes = services.key_indicator_outcomes(programme_year=ortho.year)
    assert [o.key for o in outcomes] == ["readmission_30d"]
    # 1/18 = 5.56 ≤ 5.3 × 1.10 = 5.83: within tolerance
    assert outcomes[0].met and outcomes[0].result == D("5.56")
    assert (
        services.key_indicator_met(
            direction="lower_is_better", baseline=D("5.3"), result=D("5.9"), tolerance_pct=D(10)
        )
        is False
    )


def test_action_plan_only_for_interim_result_below_target(ortho):
    import datetime as dt

    from indicators.selectors import action_plans_for_year

    with scopes_disabled():
        vte = ortho.definitions["vte_prophylaxis"]
        services.result_record(
            definition=vte,
            programme_year=ortho.year,
            period=ortho.quarter(1),
            numerator=D(19),
            denominator=D(20),
            source_note="Q1",
        )  # 95%: meets target
        with pytest.raises(ValidationError):
            services.action_plan_create(
                definition=vte,
                programme_year=ortho.year,
                title="x",
                owner="y",
                due_date=dt.date(2025, 6, 30),
            )
        services.result_record(
            definition=vte,
            programme_year=ortho.year,
            period=ortho.quarter(2),
            numerator=D(17),
            denominator=D(20),
            source_note="Q2",
        )  # 85%
        plan = services.action_plan_create(
            definition=vte,
            programme_year=ortho.year,
            title="Order set",
            owner="Dr Adams",
            due_date=dt.date(2025, 9, 30),
            steps=[{"description": "Default order set", "due_date": dt.date(2025, 7, 31)}],
        )
        assert list(action_plans_for_year(programme_year=ortho.year, status="open")) == [plan]
        services.action_plan_close(plan=plan, note="Q3 at 97%")
        assert list(action_plans_for_year(programme_year=ortho.year, status="closed")) == [plan]
