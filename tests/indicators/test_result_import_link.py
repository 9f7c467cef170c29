"""A result recorded from a results file names the file (issue 17): the version (and its
history row) keeps the ``ResultImport`` that wrote it; the import's page lists the results it
wrote, the result's page says "from import <file> (<date>)", the API shows the link both ways.
Another hospital's user gets 404 on the import and its results; a physician sees only the
results of their own agreements."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from comanage.core.models import ApiToken
from indicators import aggregate_import, services
from indicators.models import IndicatorResult, ResultImport
from tests import factories as f

from .conftest import ortho_build

pytestmark = pytest.mark.django_db
D = Decimal
CANONICAL = Path(__file__).resolve().parents[1] / "data" / "exports" / "indicator_results_2025.csv"
API = "/api/v1/organizations/riverside/"


def _imported(world, agreement, name: str = "results.csv") -> ResultImport:
    admin = world.users["administrator"]
    with world.scope():
        result_import = aggregate_import.result_import_receive(
            organization=world.org,
            agreement=agreement,
            upload=SimpleUploadedFile(name, CANONICAL.read_bytes()),
            user=admin,
        )
        aggregate_import.result_import_apply(result_import=result_import, user=admin)
    return result_import


def _api(user) -> APIClient:  # type: ignore[no-untyped-def]
    _token, raw = ApiToken.issue(user=user, name="script", two_factor_verified=True)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_each_version_it_wrote_names_the_import_and_its_history_too(world, ortho, media):
    result_import = _imported(world, ortho.agreement)
    with world.scope():
        written = IndicatorResult.objects.filter(result_import=result_import)
        assert written.count() == 6
        ssi = written.get(definition__key="ssi_joint", period_label="2025")
        assert ssi.history.latest().result_import_id == result_import.pk
    # the same file again writes nothing, so the second import names no result
    again = _imported(world, ortho.agreement, "again.csv")
    with world.scope():
        assert not IndicatorResult.objects.filter(result_import=again).exists()
        # an entry by hand names no import
        entered = services.result_record(
            definition=ortho.definitions["ssi_joint"],
            programme_year=ortho.year,
            period=ortho.annual,
            numerator=D(5),
            denominator=D(500),
            source_note="NHSN correction",
        )
        assert entered.result_import is None and entered.version == 2
    # a third time, the file writes back the period corrected by hand, and only that one
    third = _imported(world, ortho.agreement, "third.csv")
    with world.scope():
        (rewritten,) = IndicatorResult.objects.filter(result_import=third)
        assert (rewritten.definition.key, rewritten.version, rewritten.is_current) == (
            "ssi_joint",
            3,
            True,
        )
        assert rewritten.history.latest().result_import_id == third.pk


def test_the_import_page_lists_what_it_wrote_and_the_result_page_names_the_file(
    world, ortho, media
):
    result_import = _imported(world, ortho.agreement, "q-dashboard.csv")
    client = world.client("administrator")
    page = client.get(f"/o/riverside/indicators/results-imports/{result_import.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "Results it wrote" in html
    with world.scope():
        ssi = IndicatorResult.objects.get(
            result_import=result_import, definition__key="ssi_joint", period_label="2025"
        )
    result_url = reverse("indicator_result", args=["riverside", ortho.agreement.pk, ssi.pk])
    assert f'href="{result_url}"' in html
    detail = client.get(result_url)
    assert detail.status_code == 200
    day = timezone.localtime(result_import.uploaded_at).strftime("%b %-d, %Y")
    text = detail.content.decode()
    assert f"from import q-dashboard.csv ({day})" in text
    assert f"/o/riverside/indicators/results-imports/{result_import.pk}/" in text


def test_the_api_shows_the_link_both_ways(world, ortho, media):
    result_import = _imported(world, ortho.agreement)
    api = _api(world.users["administrator"])
    results = api.get(f"{API}indicator-result-imports/{result_import.pk}/results/")
    assert results.status_code == 200
    assert results.json()["result_import"] == result_import.pk
    body = results.json()["results"]
    assert len(body) == 6
    assert {r["result_import"] for r in body} == {result_import.pk}
    one = api.get(f"{API}indicator-results/{body[0]['id']}/").json()
    assert one["result_import"] == result_import.pk
    listed = api.get(f"{API}indicator-results/", {"result_import": result_import.pk}).json()
    assert sorted(r["id"] for r in listed["results"]) == sorted(r["id"] for r in body)


def test_another_hospitals_user_gets_404_on_the_import_and_its_results(world, ortho, media):
    result_import = _imported(world, ortho.agreement)
    pk = result_import.pk
    client = world.client("outsider")
    for url in (
        f"/o/riverside/indicators/results-imports/{pk}/",
        f"/o/lakeview/indicators/results-imports/{pk}/",
    ):
        assert client.get(url).status_code == 404, url
    api = _api(world.outsider)
    for url in (
        f"{API}indicator-result-imports/{pk}/",
        f"{API}indicator-result-imports/{pk}/results/",
        f"/api/v1/organizations/lakeview/indicator-result-imports/{pk}/",
        f"/api/v1/organizations/lakeview/indicator-result-imports/{pk}/results/",
    ):
        assert api.get(url).status_code == 404, url
    listed = api.get(
        "/api/v1/organizations/lakeview/indicator-results/", {"result_import": pk}
    ).json()
    assert listed["results"] == []


def test_a_physician_sees_only_the_results_of_their_own_agreements(world, ortho, media):
    other = ortho_build(world.org)
    f.ParticipationFactory(agreement=ortho.agreement, physician=world.physician)
    own_import = _imported(world, ortho.agreement, "ortho.csv")
    other_import = _imported(world, other.agreement, "other.csv")
    api = _api(world.users["physician"])
    own = api.get(f"{API}indicator-results/", {"result_import": own_import.pk}).json()
    assert len(own["results"]) == 6
    assert {r["result_import"] for r in own["results"]} == {own_import.pk}
    theirs = api.get(f"{API}indicator-results/", {"result_import": other_import.pk}).json()
    assert theirs["results"] == []
    # the import itself is the administrator's: its page and its API are not the physician's
    assert api.get(f"{API}indicator-result-imports/{own_import.pk}/results/").status_code in (
        403,
        404,
    )
    client = world.client("physician")
    assert client.get(f"/o/riverside/indicators/results-imports/{own_import.pk}/").status_code in (
        403,
        404,
    )
    # their result's page names the file, without a link to the import page
    with world.scope():
        ssi = IndicatorResult.objects.get(
            result_import=own_import, definition__key="ssi_joint", period_label="2025"
        )
        foreign = IndicatorResult.objects.filter(result_import=other_import).first()
    page = client.get(reverse("indicator_result", args=["riverside", ortho.agreement.pk, ssi.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "from import ortho.csv (" in text
    assert "/results-imports/" not in text
    assert foreign is not None
    assert (
        client.get(
            reverse("indicator_result", args=["riverside", other.agreement.pk, foreign.pk])
        ).status_code
        == 404
    )
