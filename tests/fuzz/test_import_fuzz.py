"""Malformed files fuzzed through the three importers (savings usage, savings prices, indicator
case files), synchronously through the services.

Each file must end in exactly one of two ways: applied, or refused with problems that each name
a row (or none, for the file as a whole), a column and a reason, and then every tenant-owned
table has exactly the rows it had (``tenant_row_counts``). Any other exception is a bug (in the
web or the job path it would be a 500 or an "Unexpected error").
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django_scopes import scopes_disabled
from hypothesis import HealthCheck, given, settings

from indicators import casefile
from indicators import services as indicator_services
from savings import services as savings
from savings.models import DataImport
from tests.fuzz.files import Columns, FuzzFile, files
from tests.fuzz.tables import tenant_row_counts
from tests.indicators.conftest import EXAMPLE_D, ortho_build
from tests.savings.helpers import EXAMPLE_A, example_a_agreement, year

pytestmark = pytest.mark.django_db
EXAMPLES = 40
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
)
OUTCOMES = ("applied", "refused", "refused at upload")


ADAMS = "1000000004"
USAGE = Columns(
    names=(
        "case_id",
        "service_date",
        "case_type",
        "physician_npi",
        "payer",
        "federal_program",
        "item_code",
        "quantity",
        "unit_cost",
        "severity_weight",
        "notice_date",
        "reviewed",
        "opted_out",
    ),
    required=(
        "case_id",
        "service_date",
        "case_type",
        "physician_npi",
        "federal_program",
        "item_code",
        "quantity",
        "unit_cost",
        "severity_weight",
    ),
    plausible={
        "case_id": ("c1", "c2", "c3", "C-0042"),
        "service_date": ("2025-03-01", "2025-12-31"),
        "case_type": ("CATH",),
        "physician_npi": (ADAMS,),
        "payer": ("medicare", ""),
        "federal_program": ("true", "false"),
        "item_code": ("A1", "B1", "C1"),
        "quantity": ("1", "2", "0.5"),
        "unit_cost": ("100", "1250.00", "0"),
        "severity_weight": ("2.0", "1"),
        "notice_date": ("2025-02-20", ""),
        "reviewed": ("true", ""),
        "opted_out": ("false", ""),
    },
)
PRICES = Columns(
    names=("item_code", "unit_cost"),
    required=("item_code", "unit_cost"),
    plausible={"item_code": ("A1", "A2", "B1"), "unit_cost": ("1250", "99.5")},
)
CASES = Columns(
    names=(
        "case_id",
        "age",
        "procedure",
        "admission_type",
        "discharge_date",
        "comfort_care_only",
        "anticoagulated_on_admission",
        "prophylaxis_by_pod1",
        "medical_reason_no_prophylaxis",
    ),
    required=("case_id", "age", "procedure", "admission_type", "discharge_date"),
    plausible={
        "case_id": ("E01", "E02", "E03"),
        "age": ("42", "70", "17"),
        "procedure": ("TKA", "THA"),
        "admission_type": ("elective", "urgent"),
        "discharge_date": ("2025-02-11", "2025-06-30"),
        "comfort_care_only": ("false", "true"),
        "anticoagulated_on_admission": ("false",),
        "prophylaxis_by_pod1": ("true", "false"),
        "medical_reason_no_prophylaxis": ("", "bleeding"),
    },
)


def _problems_are_explained(items: list[dict[str, Any]], total: int) -> None:
    assert total >= 1 and items, "a refusal must say why"
    for item in items:
        assert item["row"] is None or (isinstance(item["row"], int) and item["row"] >= 1)
        assert isinstance(item["column"], str)
        assert isinstance(item["message"], str) and item["message"].strip()


# --------------------------------------------------------------------------------------------
# Savings: usage and prices


def savings_import(world: Any, agreement: Any, file: FuzzFile, *, kind: str) -> str:
    """Receive and apply one file; returns "applied", "refused at upload" or "refused"."""
    upload = SimpleUploadedFile(file.name, file.data)
    programme_year = year(agreement, 1)
    before = tenant_row_counts()
    try:
        data_import = savings.data_import_receive(
            agreement=agreement,
            kind=kind,
            period="programme",
            programme_year=programme_year,
            upload=upload,
            user=world.users["administrator"],
        )
    except ValidationError as refused:
        messages = refused.messages
        assert messages and all(m.strip() for m in messages)
        assert tenant_row_counts() == before
        return "refused at upload"
    received = tenant_row_counts()
    try:
        applied = savings.data_import_apply(data_import=data_import)
    except savings.ImportRefused as refused:
        savings.data_import_mark_failed(data_import=data_import)
        _problems_are_explained(refused.problems.items, refused.problems.total)
        assert tenant_row_counts() == received
        return "refused"
    # Applied: it was a valid file after all. Take it out again so the next example starts
    # from the same state (a later usage file would otherwise be checked against it).
    assert applied.row_count >= 1
    with scopes_disabled():
        from savings.models import PriceItem, UsageRow

        UsageRow.objects.filter(data_import=applied).delete()
        PriceItem.objects.filter(data_import=applied).delete()
        DataImport.objects.filter(pk=applied.pk).update(is_current=False, status="cancelled")
    return "applied"


@pytest.fixture
def agreement(world, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return example_a_agreement(world)


@FUZZ
@given(file=files(USAGE))
def test_fuzzed_usage_files_are_applied_or_refused_with_reasons(world, agreement, file):
    with world.scope():
        assert savings_import(world, agreement, file, kind="usage") in OUTCOMES


@FUZZ
@given(file=files(PRICES))
def test_fuzzed_price_files_are_applied_or_refused_with_reasons(world, agreement, file):
    with world.scope():
        assert savings_import(world, agreement, file, kind="prices") in OUTCOMES


# --------------------------------------------------------------------------------------------
# Indicators: case files


def case_file_import(ortho: Any, file: FuzzFile) -> str:
    before = tenant_row_counts()
    with scopes_disabled():
        try:
            case_import = indicator_services.case_import_create(
                agreement=ortho.agreement,
                programme_year=ortho.year,
                period=ortho.annual,
                data=file.data,
                filename=file.name,
                user=None,
                indicator_keys=["vte_prophylaxis"],
            )
        except ValidationError as refused:
            messages = refused.messages
            assert messages
            assert tenant_row_counts() == before
            return "refused at upload"
        received = tenant_row_counts()
        try:
            outcome = indicator_services.case_import_apply(case_import=case_import)
        except casefile.CaseFileRefused as refused:
            _problems_are_explained(
                [p.as_dict() for p in refused.problems.items], refused.problems.total
            )
            assert tenant_row_counts() == received
            return "refused"
        assert outcome.case_import.row_count >= 1
        return "applied"


@pytest.fixture
def ortho(world, settings, tmp_path):  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = tmp_path
    return ortho_build(world.org)


@FUZZ
@given(file=files(CASES))
def test_fuzzed_case_files_are_applied_or_refused_with_reasons(ortho, file):
    assert case_file_import(ortho, file) in OUTCOMES


# --------------------------------------------------------------------------------------------
# Hand-picked files


def _latin1_usage() -> bytes:
    text = (EXAMPLE_A / "usage_2025.csv").read_text().splitlines()
    header, first = text[0], text[1].split(",")
    first[4] = "Mutuelle Générale"  # payer, an accent in latin-1
    return (header + "\n" + ",".join(first) + "\n").encode("latin-1")


HAND_PICKED_USAGE = {
    "utf-16 with BOM": (EXAMPLE_A / "usage_2025.csv").read_text().encode("utf-16"),
    "latin-1 accents": _latin1_usage(),
    "empty": b"",
    "header only": (EXAMPLE_A / "usage_2025.csv").read_bytes().split(b"\n")[0] + b"\n",
    "binary garbage": bytes(range(256)) * 4,
    "zip that is not xlsx": b"PK\x03\x04" + b"\x00" * 100,
    "formula in an amount": (EXAMPLE_A / "usage_2025.csv")
    .read_bytes()
    .replace(b",1250,", b",=cmd|' /C calc'!A0,", 1),
    "negative quantity": (EXAMPLE_A / "usage_2025.csv")
    .read_bytes()
    .replace(b",A1,1,", b",A1,-1,", 1),
    "1 MB case id": (
        b"case_id,service_date,case_type,physician_npi,federal_program,item_code,"
        b"quantity,unit_cost,severity_weight\n"
        + b"x" * (1 << 20)
        + b",2025-03-01,CATH,1000000004,true,A1,1,100,2\n"
    ),
    "impossible date": (
        b"case_id,service_date,case_type,physician_npi,federal_program,"
        b"item_code,quantity,unit_cost,severity_weight\n"
        b"c1,2025-02-30,CATH,1000000004,true,A1,1,100,2\n"
    ),
    "ragged row": (
        b"case_id,service_date,case_type,physician_npi,federal_program,"
        b"item_code,quantity,unit_cost,severity_weight\n"
        b"c1,2025-03-01,CATH,1000000004,true,A1,1,100\n"
    ),
}
# Old Mac line ends (a lone CR) are read like LF: see test_cr_only_line_endings_are_read.
CR_ONLY_USAGE = (EXAMPLE_A / "usage_2025.csv").read_text().replace("\n", "\r").encode()


def _hand_picked_usage(world: Any, agreement: Any, case: str) -> str:
    name = "data.xlsx" if case == "zip that is not xlsx" else "data.csv"
    with world.scope():
        return savings_import(
            world, agreement, FuzzFile(name, HAND_PICKED_USAGE[case], case), kind="usage"
        )


@pytest.mark.parametrize("case", sorted(HAND_PICKED_USAGE))
def test_hand_picked_bad_usage_files_are_refused_with_reasons(world, agreement, case):
    outcome = _hand_picked_usage(world, agreement, case)
    assert outcome in ("refused", "refused at upload"), case


def test_cr_only_line_endings_are_read(world, agreement):
    with world.scope():
        outcome = savings_import(
            world, agreement, FuzzFile("data.csv", CR_ONLY_USAGE, "CR"), kind="usage"
        )
    assert outcome == "applied"


_GOOD_CASES = EXAMPLE_D.read_bytes()
HAND_PICKED_CASES = {
    "utf-16": EXAMPLE_D.read_text().encode("utf-16"),
    "formula age": _GOOD_CASES.replace(b"E01,42,", b"E01,=cmd|' /C calc'!A0,"),
    "impossible date": _GOOD_CASES.replace(b"2025-02-11", b"2025-02-30"),
    "far future date": _GOOD_CASES.replace(b"2025-02-11", b"9999-12-31"),
    "empty": b"",
    "header only": _GOOD_CASES.split(b"\n")[0],
    "garbage": bytes(range(256)) * 3,
    "missing column": _GOOD_CASES.replace(b",prophylaxis_by_pod1", b""),
    "negative age": _GOOD_CASES.replace(b"E01,42,", b"E01,-42,"),
}


@pytest.mark.parametrize("case", sorted(HAND_PICKED_CASES))
def test_hand_picked_bad_case_files_are_refused_with_reasons(ortho, case):
    outcome = case_file_import(ortho, FuzzFile("cases.csv", HAND_PICKED_CASES[case], case))
    assert outcome in ("refused", "refused at upload"), case


def test_a_1mb_cell_is_refused_with_a_short_message_in_usage(world, agreement):
    header = b"case_id,service_date,case_type,physician_npi,federal_program,item_code,quantity,"
    data = (
        header
        + b"unit_cost,severity_weight\nc1,"
        + b"9" * (1 << 20)
        + b",CATH,1000000004,true,A1,1,100,2\n"
    )
    with world.scope():
        data_import = savings.data_import_receive(
            agreement=agreement,
            kind="usage",
            period="programme",
            programme_year=year(agreement, 1),
            upload=SimpleUploadedFile("u.csv", data),
            user=world.users["administrator"],
        )
        with pytest.raises(savings.ImportRefused) as refused:
            savings.data_import_apply(data_import=data_import)
    assert max(len(p["message"]) for p in refused.value.problems.items) < 300


def test_a_1mb_cell_is_refused_with_a_short_message_in_case_files(ortho):
    data = _GOOD_CASES.replace(b"E01,42,", b"E01," + b"9x" * (1 << 19) + b",")
    with scopes_disabled():
        case_import = indicator_services.case_import_create(
            agreement=ortho.agreement,
            programme_year=ortho.year,
            period=ortho.annual,
            data=data,
            filename="cases.csv",
            user=None,
            indicator_keys=["vte_prophylaxis"],
        )
        with pytest.raises(casefile.CaseFileRefused) as refused:
            indicator_services.case_import_apply(case_import=case_import)
    assert max(len(p.message) for p in refused.value.problems.items) < 300
