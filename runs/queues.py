"""Lengths of the Celery queues in Redis, for the console's health page (docs/operations.md#health).

The only place outside Celery that reads the broker: a short timeout, so an
unreachable Redis makes the page say so instead of hanging it.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis
from django.conf import settings

# kombu's Redis transport keeps one list per priority step; step 0 is the queue's own name
# (kombu.transport.redis: PRIORITY_STEPS and Channel._q_for_pri, separator "\x06\x16").
_PRIORITY_STEPS = (0, 3, 6, 9)
_SEP = "\x06\x16"


@dataclass
class QueueDepths:
    depths: dict[str, int]  # queue name -> messages waiting
    error: str = ""  # why the lengths could not be read


def _keys(queue: str) -> list[str]:
    return [queue if step == 0 else f"{queue}{_SEP}{step}" for step in _PRIORITY_STEPS]


def celery_queue_depths(*, queues: list[str] | None = None, timeout_s: float | None = None) -> QueueDepths:
    """Messages waiting in the render and sandbox queues (RENDER_QUEUE, SANDBOX_QUEUE)."""
    queues = queues or [settings.RENDER_QUEUE, settings.SANDBOX_QUEUE]
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return QueueDepths({}, f"the Celery broker is not Redis ({url.split(':', 1)[0]})")
    timeout = timeout_s if timeout_s is not None else settings.HEALTH_QUEUE_TIMEOUT_S
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for key in _keys(queue):
                pipe.llen(key)
        lengths = pipe.execute()
    except redis.RedisError as exc:
        return QueueDepths({}, f"Redis did not answer within {timeout} s: {exc}")
    finally:
        client.close()
    steps = len(_PRIORITY_STEPS)
    return QueueDepths({q: sum(lengths[i * steps : (i + 1) * steps]) for i, q in enumerate(queues)})
