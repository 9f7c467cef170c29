"""Jobs: status with live progress, and the error report as JSON and CSV."""

from __future__ import annotations

import csv
import io

from comanage.core.jobs import job_create, job_fail, job_progress, job_start

JOBS = "/api/v1/organizations/riverside/jobs/"


def _job(world, user=None, kind="cost_import"):  # type: ignore[no-untyped-def]
    with world.scope():
        return job_create(
            organization=world.org, kind=kind, user=user or world.users["administrator"]
        )


def test_a_running_job_reports_live_progress(world, api):
    job = _job(world)
    with world.scope():
        job_start(job.pk)
        job_progress(job.pk, 42, "Reading rows")
    body = api("executive").get(f"{JOBS}{job.pk}/").json()
    assert body["status"] == "running"
    assert body["progress"] == 42
    assert body["message"] == "Reading rows"
    listed = api("executive").get(JOBS).json()
    assert listed["count"] == 1 and listed["results"][0]["progress"] == 42


def test_the_error_report_as_json_and_csv(world, api):
    job = _job(world)
    with world.scope():
        job_start(job.pk)
        job_fail(
            job.pk,
            message="2 problems",
            error_count=250,
            errors=[
                {"row": 3, "column": "cost", "message": "Not a number"},
                {"row": 7, "column": "npi", "message": '=HYPERLINK("x")'},
            ],
        )
    client = api("administrator")
    body = client.get(f"{JOBS}{job.pk}/errors/").json()
    assert body == {
        "job": job.pk,
        "error_count": 250,
        "errors": [
            {"row": "3", "column": "cost", "message": "Not a number"},
            {"row": "7", "column": "npi", "message": '=HYPERLINK("x")'},
        ],
    }
    response = client.get(f"{JOBS}{job.pk}/errors.csv/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["row", "column", "reason"]
    assert rows[1] == ["3", "cost", "Not a number"]
    assert rows[2][2].startswith("'=")  # spreadsheet formulas neutralised


def test_lists_filter_and_order(world, api):
    first = _job(world, kind="cost_import")
    second = _job(world, kind="calculation")
    client = api("auditor")
    ids = [j["id"] for j in client.get(JOBS, {"ordering": "id"}).json()["results"]]
    assert ids == [first.pk, second.pk]
    kinds = [j["kind"] for j in client.get(JOBS, {"kind": "calculation"}).json()["results"]]
    assert kinds == ["calculation"]
    assert client.get(JOBS, {"page_size": 1}).json()["next"] is not None


def test_physicians_see_only_jobs_they_started(world, api):
    theirs = _job(world, user=world.users["physician"])
    other = _job(world)
    client = api("physician")
    assert [j["id"] for j in client.get(JOBS).json()["results"]] == [theirs.pk]
    assert client.get(f"{JOBS}{theirs.pk}/").status_code == 200
    assert client.get(f"{JOBS}{other.pk}/").status_code == 404
    assert client.get(f"{JOBS}{other.pk}/errors.csv/").status_code == 404


def test_the_outsider_gets_404_for_every_job_url(world, api):
    job = _job(world)
    client = api("outsider")
    for url in (JOBS, f"{JOBS}{job.pk}/", f"{JOBS}{job.pk}/errors/", f"{JOBS}{job.pk}/errors.csv/"):
        assert client.get(url).status_code == 404, url
    # ...and A's job is not reachable through the outsider's own organization either.
    assert client.get(f"/api/v1/organizations/lakeview/jobs/{job.pk}/").status_code == 404
