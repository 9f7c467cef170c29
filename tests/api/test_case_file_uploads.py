"""Patient-level case files through the API (``indicator-imports/``): the bad input of issue 19
(a wrong kind of file, an empty file, a 0-byte body, the same Idempotency-Key with another file)
is each a 4xx naming the problem, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from comanage.core.models import Job
from indicators.models import CaseImport
from tests.savings.helpers import example_a_agreement, year

pytestmark = pytest.mark.django_db
IMPORTS = "/api/v1/organizations/riverside/indicator-imports/"
CASES = (
    Path(__file__).resolve().parents[2] / "docs" / "examples" / "vte_cases_2025.csv"
).read_bytes()


@pytest.fixture
def agreement(world):  # type: ignore[no-untyped-def]
    return example_a_agreement(world)


def _stored(world) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with world.scope():
        return CaseImport.objects.count(), Job.objects.count()


def _body(agreement, content: bytes, name: str = "cases.csv") -> dict:  # type: ignore[no-untyped-def]
    return {
        "agreement": agreement.pk,
        "programme_year": year(agreement, 1).pk,
        "period": "annual",
        "file": SimpleUploadedFile(name, content, content_type="text/csv"),
    }


@pytest.mark.parametrize(
    ("content", "name"),
    [(b"", "cases.csv"), (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "cases.pdf")],
    ids=["empty file", "a PDF"],
)
def test_an_empty_or_wrong_kind_of_file_is_a_400_naming_the_file(
    world, api, agreement, content, name
):
    response = api("administrator").post(
        IMPORTS, _body(agreement, content, name), format="multipart"
    )
    assert response.status_code == 400, response.content[:300]
    assert "file" in [e["field"] for e in response.json()["errors"]]
    assert _stored(world) == (0, 0)


def test_a_zero_byte_body_is_a_400_naming_the_fields(world, api, agreement):
    response = api("administrator").generic(
        "POST", IMPORTS, b"", content_type="multipart/form-data; boundary=x"
    )
    assert response.status_code == 400, response.content[:300]
    assert {"agreement", "programme_year", "file"} <= {
        e["field"] for e in response.json()["errors"]
    }
    assert _stored(world) == (0, 0)


def test_the_same_key_with_another_file_is_409_and_stores_nothing_more(world, api, agreement):
    client = api("administrator")
    first = client.post(
        IMPORTS, _body(agreement, CASES), format="multipart", HTTP_IDEMPOTENCY_KEY="cases-1"
    )
    assert first.status_code == 202, first.content[:300]
    again = client.post(
        IMPORTS, _body(agreement, CASES), format="multipart", HTTP_IDEMPOTENCY_KEY="cases-1"
    )
    assert again.status_code == 202 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    stored = _stored(world)
    other = client.post(
        IMPORTS,
        _body(agreement, CASES.replace(b"E01", b"E99")),
        format="multipart",
        HTTP_IDEMPOTENCY_KEY="cases-1",
    )
    assert other.status_code == 409, other.content[:300]
    assert "different file" in other.json()["errors"][0]["message"]
    assert _stored(world) == stored == (1, 1)
