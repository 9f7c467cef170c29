"""Two people do the same thing at the same moment (real PostgreSQL, one connection per thread).

* Two administrators start the same adjudication calculation for the same agreement-year:
  exactly one run is stored (the Job dedupe key, then the run's unique hash).
* The same upload is sent twice, one after the other and at the same time, for savings usage and
  for an indicator case file: it is detected by its checksum and applied once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import close_old_connections, connection
from django_scopes import scopes_disabled

from adjudication import services as adjudication
from adjudication.models import AdjudicationReport, CalculationRun, Distribution
from comanage.core.jobs import DuplicateJob
from comanage.core.models import BusinessEvent, Job, JobStatus
from indicators.models import CaseImport, CaseMembership, IndicatorResult
from savings import services as savings
from savings.models import DataImport, ImportStatus, UsageRow
from tests.faults.conftest import tenant_row_counts
from tests.indicators.conftest import EXAMPLE_D, ortho_build
from tests.savings.helpers import EXAMPLE_A, example_a_agreement, import_example_a, year

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def at_once(*actions: Callable[[], Any]) -> list[Any]:
    """Run the actions on their own threads (own connections), released together."""
    if connection.vendor != "postgresql":
        pytest.skip("concurrency needs PostgreSQL: set DATABASE_URL (CI does)")
    barrier = threading.Barrier(len(actions))
    outcomes: list[Any] = [None] * len(actions)

    def run(index: int, action: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[index] = action()
        except Exception as exc:  # noqa: BLE001 - the outcome is inspected by the test
            outcomes[index] = exc
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    return outcomes


# --------------------------------------------------------------------------------------------
# Two administrators, one calculation


@pytest.fixture
def year_with_data(world, real_services, media_dir):  # type: ignore[no-untyped-def]
    agreement = example_a_agreement(world)
    import_example_a(world, agreement)
    with world.scope():
        return year(agreement, 1)


def test_two_administrators_starting_the_same_calculation_store_one_run(world, year_with_data):
    admins = [world.users["administrator"], world.users["administrator"]]

    def start(user):  # type: ignore[no-untyped-def]
        def action() -> Any:
            with world.scope():
                return adjudication.adjudication_run_start(programme_year=year_with_data, user=user)

        return action

    outcomes = at_once(*(start(u) for u in admins))
    assert all(isinstance(o, Job | DuplicateJob) for o in outcomes), outcomes
    with scopes_disabled():
        assert CalculationRun.objects.filter(programme_year=year_with_data).count() == 1
        assert AdjudicationReport.objects.count() == 1
        run = CalculationRun.objects.get()
        assert Distribution.objects.filter(run=run).exists()
        assert Distribution.objects.exclude(run=run).count() == 0
        assert BusinessEvent.objects.filter(name="calculation.recorded").count() == 1
        assert not Job.objects.exclude(status__in=[JobStatus.SUCCEEDED]).exists()


def test_two_calculations_recorded_at_the_same_instant_store_one_run(world, year_with_data):
    """Without the job (the service called twice at once): the run's unique constraint."""

    def run() -> Any:
        with world.scope():
            return adjudication.adjudication_run(
                programme_year=year_with_data, user=world.users["administrator"]
            )

    first, second = at_once(run, run)
    assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
    assert first.run.pk == second.run.pk
    assert sorted([first.created, second.created]) == [False, True]
    with scopes_disabled():
        assert CalculationRun.objects.count() == 1
        assert AdjudicationReport.objects.count() == 1


# --------------------------------------------------------------------------------------------
# The same upload twice


def _usage_upload(world, agreement):  # type: ignore[no-untyped-def]
    def action() -> Any:
        upload = SimpleUploadedFile("usage_2024.csv", (EXAMPLE_A / "usage_2024.csv").read_bytes())
        with world.scope():
            data_import = savings.data_import_receive(
                agreement=agreement,
                kind="usage",
                period="base",
                base_year=2024,
                upload=upload,
                user=world.users["administrator"],
            )
            return savings.data_import_start(
                data_import=data_import, user=world.users["administrator"]
            )

    return action


def _assert_usage_applied_once() -> None:
    rows = (EXAMPLE_A / "usage_2024.csv").read_text().strip().count("\n")
    with scopes_disabled():
        applied = DataImport.objects.filter(status=ImportStatus.APPLIED)
        assert applied.count() == 1
        assert UsageRow.objects.count() == rows == applied.get().row_count
        assert BusinessEvent.objects.filter(name="savings.file_applied").count() == 1


def test_the_same_usage_file_sent_twice_is_applied_once(world, real_services, media_dir):
    agreement = example_a_agreement(world)
    _usage_upload(world, agreement)()
    before = tenant_row_counts()
    with pytest.raises(ValidationError, match="already imported"):
        _usage_upload(world, agreement)()
    assert tenant_row_counts() == before
    _assert_usage_applied_once()


def test_the_same_usage_file_sent_twice_at_once_is_applied_once(world, real_services, media_dir):
    agreement = example_a_agreement(world)
    outcomes = at_once(_usage_upload(world, agreement), _usage_upload(world, agreement))
    refused = [o for o in outcomes if isinstance(o, savings.DuplicateUpload | DuplicateJob)]
    assert len(refused) == 1, outcomes
    _assert_usage_applied_once()


@pytest.fixture
def ortho_year(world, real_services, media_dir):  # type: ignore[no-untyped-def]
    from indicators.library import templates_load
    from indicators.models import IndicatorTemplate

    # A transactional test before this one flushed the library its migration had loaded.
    templates_load(IndicatorTemplate)
    return ortho_build(world.org)


def _case_file_upload(world, ortho):  # type: ignore[no-untyped-def]
    base = f"/o/{world.org.slug}/agreements/{ortho.agreement.pk}/indicators/"

    def action() -> str:
        client = world.client("administrator")
        response = client.post(
            base + "import/",
            {
                "period": ortho.annual.key,
                "indicators": ["vte_prophylaxis"],
                "year": ortho.year.pk,
                "file": SimpleUploadedFile("cases.csv", EXAMPLE_D.read_bytes()),
            },
        )
        assert response.status_code == 302, response.content[:500]
        import_pk = int(response["Location"].rstrip("/").rsplit("/", 1)[1])
        response = client.post(base + f"imports/{import_pk}/run/", follow=True)
        assert response.status_code == 200
        return response.content.decode()

    return action


def _assert_case_file_applied_once() -> None:
    rows = EXAMPLE_D.read_text().strip().count("\n")
    with scopes_disabled():
        assert IndicatorResult.objects.filter(definition__key="vte_prophylaxis").count() == 1
        applied = CaseImport.objects.filter(status="applied")
        assert applied.count() == 1
        assert CaseMembership.objects.count() == rows
        assert Job.objects.filter(status=JobStatus.SUCCEEDED).count() == 1


def test_the_same_case_file_sent_twice_is_applied_once(world, ortho_year):
    _case_file_upload(world, ortho_year)()
    page = _case_file_upload(world, ortho_year)()
    assert "already imported" in page
    _assert_case_file_applied_once()


def test_the_same_case_file_sent_twice_at_once_is_applied_once(world, ortho_year):
    pages = at_once(_case_file_upload(world, ortho_year), _case_file_upload(world, ortho_year))
    assert all(isinstance(p, str) for p in pages), pages
    assert sum("already imported" in p for p in pages) == 1
    _assert_case_file_applied_once()
