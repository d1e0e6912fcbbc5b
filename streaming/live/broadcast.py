"""Push committed changes to browsers: one message per run per batch (docs/portal.md#live).

Called only after commit, by the change listener below (runs.services.changes): a push
must never describe data that could still roll back. Channel layers deliver
at most once; each message carries the run's ``seq`` (read after commit) so a
browser that misses one notices the gap and refetches the run's state.

Sends go through one event loop in a daemon thread per process: the caller
(the consumer's store thread, a request, a Celery task) is never blocked on
Redis, and all sends share the layer's connections instead of opening new
ones per call (``async_to_sync`` would start a fresh loop each time).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future

import orjson
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings

from runs.selectors.run_state import artifact_states, run_summaries
from runs.services.bucket_probes import probes_pushed
from runs.services.changes import Changes
from streaming.live import groups
from streaming.live.messages import ProbeArrived, RunChanged, RunsChanged
from vizsite import metrics
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.broadcast")

# Time to wait when a caller asks to (tests, benchmarks, shutdown).
SEND_TIMEOUT_S = 5.0


class _SendLoop:
    """An asyncio loop in a daemon thread, one per process (re-created after fork)."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="broadcast", daemon=True)
        self.thread.start()

    def submit(self, coro) -> Future:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)


_sender: _SendLoop | None = None
_sender_lock = threading.Lock()


def _send_loop() -> _SendLoop:
    global _sender
    with _sender_lock:
        if _sender is None or _sender.pid != os.getpid():
            _sender = _SendLoop()
        return _sender


def build_messages(*, run_ids: Iterable[int], artifact_ids: Sequence[int]) -> list[tuple[str, dict]]:
    """(group, channel-layer event) pairs for the runs' current state (three queries).

    A batch that changed more than ``BROADCAST_MAX_ARTIFACTS`` artifacts (a
    consumer catching up on a backlog) pushes run summaries only, marked
    ``partial``: loading and encoding thousands of artifact states per batch
    would cost the consumer more than storing them, and no page can show
    them that fast anyway. Pages refetch the state of the run they show.
    """
    partial = len(artifact_ids) > settings.BROADCAST_MAX_ARTIFACTS
    states = [] if partial else artifact_states(artifact_ids=artifact_ids)
    by_run: dict[int, list[dict]] = {}
    for state in states:
        by_run.setdefault(state["run_id"], []).append(state)
    summaries = run_summaries(run_ids=set(run_ids) | set(by_run))
    out: list[tuple[str, dict]] = []
    for run_id, summary in sorted(summaries.items()):
        run_msg = RunChanged(
            run_id=run_id, seq=summary["seq"], run=summary, artifacts=by_run.get(run_id, []), partial=partial
        )
        # Serialised once here, not once per socket: a 1,000-socket fan-out
        # then costs 1,000 writes, not 1,000 JSON encodings.
        out.append((groups.run_group(run_id), {"type": "run.changed", "text": _json(run_msg)}))
        # The runs-list socket filters per user; these fields let it decide
        # without a query (runs.selectors.access.AccessScope.allows).
        out.append(
            (
                groups.runs_list_group(),
                {
                    "type": "runs.changed",
                    "text": _json(RunsChanged(run=summary)),
                    "bucket_id": summary["bucket_id"],
                    "run_key": summary["run_key"],
                    "namespace": summary["namespace"],
                },
            )
        )
    return out


def _json(message) -> str:
    return orjson.dumps(message.as_dict()).decode()


async def _send_all(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    if isinstance(layer, RedisPubSubChannelLayer):
        results = await _publish_pipelined(layer, messages)
    else:
        results = await asyncio.gather(
            *(layer.group_send(group, event) for group, event in messages), return_exceptions=True
        )
    failed = [r for r in results if isinstance(r, BaseException)]
    metrics.BROADCAST_MESSAGES.labels(outcome="sent").inc(len(results) - len(failed))
    if failed:
        metrics.BROADCAST_MESSAGES.labels(outcome="failed").inc(len(failed))
        log_event(
            logger,
            "broadcast_failed",
            level=logging.WARNING,
            failed=len(failed),
            total=len(messages),
            error=repr(failed[0])[:200],
        )


async def _publish_pipelined(layer: RedisPubSubChannelLayer, messages: list[tuple[str, dict]]) -> list:
    """What ``group_send`` does for each message (the same channel names, serialisation and
    shard connections), but one Redis round trip per shard for the whole batch.

    The pub/sub layer sends each ``group_send`` as its own ``PUBLISH`` behind a lock:
    a consumer catching up touches ~150 runs per batch, and 300 sequential round
    trips through asyncio cost it more CPU than storing the batch (~15 µs per
    event; docs/performance.md#ingest). Uses the layer's internals, checked by
    tests/streaming/live/test_broadcast.py against the real layer (channels-redis
    is pinned).
    """
    loop_layer = layer._get_layer()
    by_shard: dict[int, tuple[object, list[tuple[str, bytes]]]] = {}
    for group, event in messages:
        channel = loop_layer._get_group_channel_name(group)
        shard = loop_layer._get_shard(channel)
        by_shard.setdefault(id(shard), (shard, []))[1].append((channel, layer.serialize(event)))

    async def publish(shard, items: list[tuple[str, bytes]]) -> None:
        async with shard._lock:
            shard._ensure_redis()
            pipe = shard._redis.pipeline(transaction=False)
            for channel, data in items:
                pipe.publish(channel, data)
            await pipe.execute()

    return await asyncio.gather(
        *(publish(shard, items) for shard, items in by_shard.values()), return_exceptions=True
    )


def broadcast_runs(
    *, run_ids: Iterable[int], artifact_ids: Sequence[int] = (), wait: bool = False
) -> Future | None:
    """Send the current state of ``run_ids`` (and of ``artifact_ids``) now. Call after commit only.

    Returns the send's future; ``wait=True`` blocks until sent (bounded).
    A failure is logged, never raised: browsers recover through ``seq``.
    """
    try:
        messages = build_messages(run_ids=run_ids, artifact_ids=artifact_ids)
    except Exception as exc:  # the data is committed; a lost push is recoverable
        log_event(logger, "broadcast_failed", level=logging.WARNING, error=repr(exc)[:200])
        return None
    if not messages:
        return None
    future = _send_loop().submit(_send_all(messages))
    if wait:
        future.result(timeout=SEND_TIMEOUT_S)
    return future


def on_changes(changes: Changes) -> None:
    """Change listener (subscribed in streaming.apps): runs after commit already.

    Every run whose ``seq`` went up gets a message, even when no artifact
    changed (all events stale), so browsers never see a false gap; a partial
    push (artifact states left out) still reaches every one of them.
    """
    broadcast_runs(run_ids=changes.run_ids, artifact_ids=changes.artifact_ids)


def on_access_changed(user_ids: frozenset[int]) -> None:
    """Access listener (subscribed in streaming.apps): the users' open sockets check again."""
    messages = [(groups.user_group(uid), {"type": "access.changed"}) for uid in sorted(user_ids)]
    if messages:
        _send_loop().submit(_send_all(messages))


async def _send_strict(messages: list[tuple[str, dict]]) -> None:
    layer = get_channel_layer()
    for group, event in messages:
        await layer.group_send(group, event)


def on_probes(probe_ids: list[int]) -> None:
    """Probe listener (subscribed in streaming.apps), after the probes' event was stored: hand a
    message per probe to the channel layer and record that hop (docs/operations.md#probe).
    Waits for the send (probes are rare and tiny); a failed send leaves the hop missing, which
    the console names."""
    messages = [
        (groups.probe_group(pid), {"type": "probe.arrived", "text": _json(ProbeArrived(probe_id=pid))})
        for pid in probe_ids
    ]
    try:
        _send_loop().submit(_send_strict(messages)).result(timeout=SEND_TIMEOUT_S)
    except Exception as exc:
        log_event(logger, "probe_push_failed", level=logging.WARNING, error=repr(exc)[:200])
        return
    probes_pushed(probe_ids=probe_ids)
