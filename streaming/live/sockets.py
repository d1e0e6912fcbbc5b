"""WebSocket consumers: the runs list and one run page (docs/portal.md#live).

Thin entry points: authenticate, ask the access selector, join a group,
forward pushes. A socket that is anonymous or asks for a run the user may
not see is refused before the handshake completes (HTTP 403 to the browser),
so a run's existence does not leak through the socket either.
"""

from __future__ import annotations

import logging

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from runs.models import Run
from runs.selectors.access import AccessScope, access_scope_for, run_get_visible
from streaming.live import groups
from streaming.live.messages import Error, Hello, MessageError, Pong, parse_client_frame
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.sockets")


def _dumps(message) -> str:
    return orjson.dumps(message.as_dict()).decode()


# Channel-layer pushes: handled without touching the database.
_PUSH_TYPES = frozenset({"run.changed", "runs.changed"})


class _PortalSocket(AsyncWebsocketConsumer):
    group: str | None = None

    async def dispatch(self, message):
        """Forward pushes straight away. Channels' own dispatch first runs
        ``close_old_connections`` through ``sync_to_async`` for every message: one
        hop through the single thread-sensitive executor per socket, which
        serialised a 1,000-socket fan-out (~0.6 ms each; docs/performance.md).
        Push handlers never use the database, so they skip it; everything else
        (connect, receive, disconnect) keeps Channels' behaviour."""
        if message["type"] in _PUSH_TYPES:
            await getattr(self, message["type"].replace(".", "_"))(message)
            return
        await super().dispatch(message)

    async def receive(self, text_data=None, bytes_data=None):
        """Browsers send only pings; anything else gets an error frame, and the socket stays."""
        try:
            parse_client_frame(text_data)
        except MessageError as exc:
            await self.send(text_data=_dumps(Error(error=str(exc))))
            return
        await self.send(text_data=_dumps(Pong()))

    async def disconnect(self, code):
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)


class RunConsumer(_PortalSocket):
    """``/ws/runs/<run_id>/``: pushes for one run the user may see."""

    async def connect(self):
        user = self.scope.get("user")
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if user is None or not user.is_authenticated:
            log_event(logger, "socket_refused", reason="anonymous", run=run_id)
            await self.close(code=4401)
            return
        if await database_sync_to_async(run_get_visible)(user=user, run_id=run_id) is None:
            log_event(logger, "socket_refused", reason="not_visible", run=run_id, user=user.pk)
            await self.close(code=4404)
            return
        self.group = groups.run_group(run_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        # Read seq after joining: a change committed in between is then either
        # in this hello or in a push that follows it, never in neither.
        seq = await database_sync_to_async(
            lambda: Run.objects.filter(pk=run_id).values_list("seq", flat=True).first())()
        await self.accept()
        await self.send(text_data=_dumps(Hello(seq=seq)))

    async def run_changed(self, event):
        await self.send(text_data=event["text"])


class RunsListConsumer(_PortalSocket):
    """``/ws/runs/``: run summaries for the runs list, filtered by the user's grants."""

    scope_access: AccessScope

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            log_event(logger, "socket_refused", reason="anonymous", run="list")
            await self.close(code=4401)
            return
        self.scope_access = await database_sync_to_async(access_scope_for)(user=user)
        self.group = groups.runs_list_group()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=_dumps(Hello()))

    async def runs_changed(self, event):
        if self.scope_access.allows(bucket_id=event["bucket_id"], run_key=event["run_key"],
                                    namespace=event["namespace"]):
            await self.send(text_data=event["text"])
