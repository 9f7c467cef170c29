"""The Celery app. Tasks re-enter the tenant scope through ``comanage.core.tasks.tenant_task``.

Tasks are routed to a queue per kind of work, so an installation can give each its own workers
on any number of machines (docs/scaling.md): ``imports``, ``calculations``, ``pdfs``,
``webhooks``; everything else (beat's maintenance) stays on the default queue ``celery``.
Every queue is declared, so a worker started without ``-Q`` (``make run``, docker-compose)
consumes all of them; ``celery -A comanage worker -Q pdfs`` takes one.
"""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")

app = Celery("comanage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

QUEUES = ("celery", "imports", "calculations", "pdfs", "webhooks")
TASK_ROUTES = {
    "savings.tasks.data_import_task": "imports",
    "indicators.tasks.case_import_run": "imports",
    "agreements.tasks.roster_import_task": "imports",
    "savings.tasks.item_import_task": "imports",
    "savings.tasks.data_import_head_task": "imports",
    "savings.tasks.savings_calculation_task": "calculations",
    "adjudication.tasks.adjudication_run_task": "calculations",
    "agreements.tasks.compliance_scan_organization": "calculations",
    "adjudication.tasks.report_render_task": "pdfs",
    "*.webhook*": "webhooks",
}
app.conf.task_default_queue = "celery"
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_routes = {name: {"queue": queue} for name, queue in TASK_ROUTES.items()}
