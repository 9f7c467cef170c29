"""The Celery app. Tasks re-enter the tenant scope through ``comanage.core.tasks.tenant_task``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "comanage.settings.local")

app = Celery("comanage")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
