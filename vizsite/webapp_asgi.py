"""ASGI entry point of the web-app origin (runs/webapp.py): ``daphne vizsite.webapp_asgi:application``."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizsite.settings.base")
django.setup()

from runs.webapp import application  # noqa: E402

__all__ = ["application"]
