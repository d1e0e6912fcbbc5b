"""ASGI entry point served by daphne (HTTP now; WebSockets join with the portal)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizsite.settings.base")
application = get_asgi_application()
