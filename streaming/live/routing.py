"""WebSocket URL routes (mounted under the origin and auth checks in vizsite/asgi.py)."""

from django.urls import path

from streaming.live.sockets import CompareConsumer, RunConsumer, RunsListConsumer

websocket_urlpatterns = [
    path("ws/runs/", RunsListConsumer.as_asgi(), name="ws-runs"),
    path("ws/runs/<int:run_id>/", RunConsumer.as_asgi(), name="ws-run"),
    path("ws/compare/", CompareConsumer.as_asgi(), name="ws-compare"),
]
