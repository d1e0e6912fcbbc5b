"""The Celery app: Redis broker, one ``render`` queue (docs/viewers.md).

Configuration is read from Django settings named ``CELERY_*``. Start a worker
with ``celery -A vizsite worker -Q render`` (``make run`` does).
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizsite.settings.base")

app = Celery("vizsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
