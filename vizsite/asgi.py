"""ASGI entry point served by daphne: HTTP through Django, WebSockets through Channels.

WebSockets are origin-checked against ALLOWED_HOSTS, then authenticated with
the session cookie, then routed (docs/security.md, docs/portal.md).
"""

import atexit
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizsite.settings.base")
# Django must be set up before the consumers (and their models) are imported.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402 - needs Django set up (above)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 - needs Django set up (above)
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402 - needs Django set up (above)

from streaming.live.routing import websocket_urlpatterns  # noqa: E402 - needs Django set up (above)
from vizsite.metrics import forget_process  # noqa: E402 - after Django, like the imports above

# This process's open-connections gauge leaves the shared metrics directory with it.
atexit.register(forget_process)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
