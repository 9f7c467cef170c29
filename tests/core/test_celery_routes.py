"""Each kind of background work has its queue; a plain worker still consumes every queue."""

from __future__ import annotations

from comanage.celery import QUEUES, TASK_ROUTES, app


def _own_tasks() -> set[str]:
    app.loader.import_default_modules()
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_routed_task_exists():
    tasks = _own_tasks()
    missing = [name for name in TASK_ROUTES if "*" not in name and name not in tasks]
    assert missing == []


def test_every_import_calculation_and_pdf_task_has_its_queue():
    queue_of = {name: app.amqp.router.route({}, name)["queue"].name for name in _own_tasks()}
    assert queue_of["savings.tasks.data_import_task"] == "imports"
    assert queue_of["indicators.tasks.case_import_run"] == "imports"
    assert queue_of["savings.tasks.savings_calculation_task"] == "calculations"
    assert queue_of["adjudication.tasks.adjudication_run_task"] == "calculations"
    assert queue_of["adjudication.tasks.report_render_task"] == "pdfs"
    assert set(queue_of.values()) <= set(QUEUES)


def test_a_worker_without_queues_consumes_all_of_them():
    assert {q.name for q in app.conf.task_queues} == set(QUEUES)
