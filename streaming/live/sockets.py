"""WebSocket sockets: the runs list and one run page (docs/portal.md#live, docs/security.md).

Thin entry points: authenticate, ask the access selector, join groups,
forward pushes. A socket that is anonymous or asks for a run the user may
not see is refused before the handshake completes (HTTP 403 to the browser),
so a run's existence does not leak through the socket either.

Access is not only decided at connect. Each socket also joins its user's
group and checks again when told that the user's access changed (grant
revoked, user deactivated, logout, password change:
``runs.services.changes.access_changed_on_commit``), every
``SOCKET_ACCESS_RECHECK_S`` seconds in case such a message was lost, and
closes itself after ``SOCKET_MAX_AGE_S`` (the page reconnects and is checked
anew). Close codes tell the page what to do:

- 4401: not logged in, or the session ended (logout, deactivation, password
  change: Django rotates the changing session's key): the page checks whether
  its cookie still logs it in, and reconnects or offers to log in again;
- 4403: the user may no longer see this run: stop and say so;
- 4404: the run does not exist or was never visible: stop and say so;
- 4000: the socket reached its maximum age: reconnect at once.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from runs.compare_match import CompareInputError, parse_run_ids
from runs.models import Run
from runs.selectors.access import (
    AccessScope,
    access_scope_for,
    run_get_visible,
    runs_visible_to,
    session_user_get,
)
from streaming.live import groups
from streaming.live.messages import CompareHello, Error, Hello, MessageError, Pong, parse_client_frame
from vizsite import metrics
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.sockets")

CLOSE_LOGGED_OUT = 4401
CLOSE_ACCESS_REVOKED = 4403
CLOSE_NOT_VISIBLE = 4404
CLOSE_MAX_AGE = 4000


def _dumps(message) -> str:
    return orjson.dumps(message.as_dict()).decode()


# Channel-layer pushes: handled without touching the database.
_PUSH_TYPES = frozenset({"run.changed", "runs.changed"})


class _PortalSocket(AsyncWebsocketConsumer):
    groups_joined: list[str]
    watchdog: asyncio.Task | None = None
    closed: bool = False
    counted: bool = False  # in the open-connections gauge
    socket_label = ""  # label of this socket's metrics (vizsite/metrics.py)

    async def dispatch(self, message):
        """Forward pushes straight away. Channels' own dispatch first runs
        ``close_old_connections`` through ``sync_to_async`` for every message: one
        hop through the single thread-sensitive executor per socket, which
        serialised a 1,000-socket fan-out (~0.6 ms each; docs/performance.md).
        Push handlers never use the database, so they skip it; everything else
        (connect, receive, access checks, disconnect) keeps Channels' behaviour."""
        if message["type"] in _PUSH_TYPES:
            if not self.closed:
                await getattr(self, message["type"].replace(".", "_"))(message)
            return
        await super().dispatch(message)

    # --- connect and the checks that follow ------------------------------------

    def _session_key(self) -> str | None:
        session = self.scope.get("session")
        return getattr(session, "session_key", None) if session is not None else None

    async def _admit(self, user, *page_groups: str) -> None:
        """Join the page's groups and the user's, accept, and start the watchdog."""
        self.groups_joined = [*page_groups, groups.user_group(user.pk)]
        for name in self.groups_joined:
            await self.channel_layer.group_add(name, self.channel_name)
        await self.accept()
        metrics.WEBSOCKET_CONNECTIONS.labels(socket=self.socket_label).inc()
        self.counted = True
        self.watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        """Re-check access periodically; close at the maximum age."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + settings.SOCKET_MAX_AGE_S
        while not self.closed:
            wait = min(settings.SOCKET_ACCESS_RECHECK_S, deadline - loop.time())
            if wait <= 0:
                await self._close(CLOSE_MAX_AGE, "max_age")
                return
            await asyncio.sleep(wait)
            if loop.time() < deadline:
                await self.recheck()

    async def access_changed(self, event):
        """The user's access may have changed (``streaming.live.broadcast.on_access_changed``)."""
        await self.recheck()

    async def recheck(self) -> None:
        """Check the session and this page's access again; close the socket if they are gone."""
        user = await self._session_user()
        if user is None:
            await self._close(CLOSE_LOGGED_OUT, "session_ended")
            return
        code = await database_sync_to_async(self.still_allowed)(user)
        if code:
            await self._close(code, "access_revoked")

    async def _session_user(self):
        user = await database_sync_to_async(session_user_get)(session_key=self._session_key())
        return user if user is not None and user.pk == self.scope["user"].pk else None

    def still_allowed(self, user) -> int | None:
        """None if the page may stay open, else the close code (runs in a thread)."""
        raise NotImplementedError

    async def _close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        log_event(logger, "socket_closed", reason=reason, code=code, user=self.scope["user"].pk)
        await self.close(code=code)

    # --- frames and disconnect ---------------------------------------------------

    async def receive(self, text_data=None, bytes_data=None):
        """Browsers send only pings; anything else gets an error frame, and the socket stays."""
        try:
            parse_client_frame(text_data)
        except MessageError as exc:
            await self.send(text_data=_dumps(Error(error=str(exc))))
            return
        await self.send(text_data=_dumps(Pong()))

    async def disconnect(self, code):
        self.closed = True
        if self.counted:
            self.counted = False
            metrics.WEBSOCKET_CONNECTIONS.labels(socket=self.socket_label).dec()
        if self.watchdog is not None:
            self.watchdog.cancel()
        for name in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(name, self.channel_name)


class RunConsumer(_PortalSocket):
    """``/ws/runs/<run_id>/``: pushes for one run the user may see."""

    run_id: int
    socket_label = "run"
    _pushes = metrics.WEBSOCKET_PUSHES.labels(socket="run")

    async def connect(self):
        user = self.scope.get("user")
        self.run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if user is None or not user.is_authenticated:
            log_event(logger, "socket_refused", reason="anonymous", run=self.run_id)
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        if await database_sync_to_async(run_get_visible)(user=user, run_id=self.run_id) is None:
            log_event(logger, "socket_refused", reason="not_visible", run=self.run_id, user=user.pk)
            await self.close(code=CLOSE_NOT_VISIBLE)
            return
        await self._admit(user, groups.run_group(self.run_id))
        # Read seq after joining: a change committed in between is then either
        # in this hello or in a push that follows it, never in neither.
        seq = await database_sync_to_async(
            lambda: Run.objects.filter(pk=self.run_id).values_list("seq", flat=True).first()
        )()
        await self.send(text_data=_dumps(Hello(seq=seq)))

    def still_allowed(self, user) -> int | None:
        return None if run_get_visible(user=user, run_id=self.run_id) is not None else CLOSE_ACCESS_REVOKED

    async def run_changed(self, event):
        await self.send(text_data=event["text"])
        self._pushes.inc()


class CompareConsumer(_PortalSocket):
    """``/ws/compare/?runs=12,15,19``: pushes for every compared run (docs/compare.md#live).

    One socket for up to 50 runs rather than a run socket each: browsers cap the
    sockets per host (and each socket is a watchdog, a recheck and a connection on the
    server). It joins each run's group, so it receives the very ``run.changed`` pushes
    of the run pages, and admits only when the user may see every run: one run that is
    missing or invisible refuses the whole socket (4404), and a recheck that finds one
    no longer visible closes it (4403), as the run page's socket does for its run.
    """

    run_ids: list[int]
    socket_label = "compare"
    _pushes = metrics.WEBSOCKET_PUSHES.labels(socket="compare")

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            log_event(logger, "socket_refused", reason="anonymous", run="compare")
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        try:
            query = parse_qs(self.scope.get("query_string", b"").decode("ascii"))
            self.run_ids = parse_run_ids(query.get("runs", []))
        except (CompareInputError, UnicodeDecodeError, ValueError):
            log_event(logger, "socket_refused", reason="bad_runs", run="compare", user=user.pk)
            await self.close(code=CLOSE_NOT_VISIBLE)
            return
        if await database_sync_to_async(self._all_visible)(user) is False:
            log_event(logger, "socket_refused", reason="not_visible", run="compare", user=user.pk)
            await self.close(code=CLOSE_NOT_VISIBLE)
            return
        await self._admit(user, *(groups.run_group(rid) for rid in self.run_ids))
        # Seqs read after joining, as on the run socket: a change is in the hello or in a push.
        seqs = await database_sync_to_async(
            lambda: dict(Run.objects.filter(pk__in=self.run_ids).values_list("pk", "seq"))
        )()
        await self.send(text_data=_dumps(CompareHello(seqs={str(k): v for k, v in seqs.items()})))

    def _all_visible(self, user) -> bool:
        visible = runs_visible_to(user=user).filter(pk__in=self.run_ids).count()
        return visible == len(self.run_ids)

    def still_allowed(self, user) -> int | None:
        return None if self._all_visible(user) else CLOSE_ACCESS_REVOKED

    async def run_changed(self, event):
        await self.send(text_data=event["text"])
        self._pushes.inc()


class RunsListConsumer(_PortalSocket):
    """``/ws/runs/``: run summaries for the runs list, filtered by the user's grants."""

    scope_access: AccessScope
    socket_label = "runs_list"
    _pushes = metrics.WEBSOCKET_PUSHES.labels(socket="runs_list")

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            log_event(logger, "socket_refused", reason="anonymous", run="list")
            await self.close(code=CLOSE_LOGGED_OUT)
            return
        self.scope_access = await database_sync_to_async(access_scope_for)(user=user)
        await self._admit(user, groups.runs_list_group())
        await self.send(text_data=_dumps(Hello()))

    def still_allowed(self, user) -> int | None:
        # The list stays open; it shows what the user's grants show now.
        self.scope_access = access_scope_for(user=user)
        return None

    async def runs_changed(self, event):
        if self.scope_access.allows(
            bucket_id=event["bucket_id"], run_key=event["run_key"], namespace=event["namespace"]
        ):
            await self.send(text_data=event["text"])
            self._pushes.inc()
