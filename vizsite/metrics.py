"""Prometheus metrics of every Pipelens process (docs/operations.md#probes-and-metrics).

Every metric is defined here, once, so names, labels and gauge modes are in
one place; the code that counts imports this module and calls the small
``record_*`` helpers (``runs`` may import it: it imports nothing of the project).

Multiprocess: daphne, ``consume_events`` and the Celery workers are separate
processes. When ``PROMETHEUS_MULTIPROC_DIR`` is set (in the environment,
before this module is first imported: prometheus_client picks its storage at
import time), each process writes its values into files there, and
``/metrics`` (vizsite/probes.py) adds them up with ``MultiProcessCollector``.
Without it, each process keeps its own values and ``/metrics`` shows those of
the process that answers (enough for one process, e.g. tests).

Gauge modes (how values of several processes combine):
- WebSocket connections: ``livesum``, the sum over the daphne processes alive;
- consumer lag: ``mostrecent``, the value last set by any process for that
  (topic, partition): a partition has one owner at a time, and a consumer
  that restarts (or is replaced after a rebalance) overwrites the old value.
"""

from __future__ import annotations

import os
import threading
from collections import Counter as TallyCounter

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# A label value per bucket, but bucket names come from messages anyone who can
# publish to the topic writes: past this many distinct names a process counts
# the rest under "_other", so a flood of invented names cannot grow the series
# (and every process's files) without bound.
MAX_BUCKET_LABELS = 500
OTHER_BUCKET = "_other"

# --- ingest (streaming/ingest/kafka_loop.py) --------------------------------------

EVENTS_CONSUMED = Counter(
    "pipelens_events_consumed_total",
    "Object events consumed from Kafka and stored (their batch committed), by action and bucket.",
    ["action", "bucket"],
)
BATCH_DURATION = Histogram(
    "pipelens_ingest_batch_duration_seconds",
    "Time to store one consumer batch in the database (one transaction).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
INGEST_ERRORS = Counter(
    "pipelens_ingest_errors_total",
    "Messages or events recorded as IngestError (unparsable, unknown bucket, unresolvable key, "
    "refused by the database).",
)
CONSUMER_LAG = Gauge(
    "pipelens_consumer_lag_messages",
    "Messages between the consumer's position and the partition's high-water mark "
    "(set after each batch, from the consumer's cached watermarks).",
    ["topic", "partition"],
    multiprocess_mode="mostrecent",
)

# --- rendering (runs/services/renditions.py) --------------------------------------

RENDER_DURATION = Histogram(
    "pipelens_render_duration_seconds",
    "Time to render one artifact version, by viewer.",
    ["viewer"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 150),
)
RENDER_FAILURES = Counter(
    "pipelens_render_failures_total",
    "Renditions stored as failed (with a reason for the user), by viewer.",
    ["viewer"],
)

# --- browsers (streaming/live/) -------------------------------------------------------

WEBSOCKET_CONNECTIONS = Gauge(
    "pipelens_websocket_connections",
    "Open WebSocket connections, by socket (run page or runs list).",
    ["socket"],
    multiprocess_mode="livesum",
)
WEBSOCKET_PUSHES = Counter(
    "pipelens_websocket_pushes_total",
    "Change messages written to browsers' sockets, by socket.",
    ["socket"],
)
BROADCAST_MESSAGES = Counter(
    "pipelens_broadcast_messages_total",
    "Group messages published to the channel layer after a commit, by outcome (sent or failed).",
    ["outcome"],
)


# --- helpers the instrumented code calls ------------------------------------------------

_bucket_labels: set[str] = set()
_bucket_lock = threading.Lock()


def bucket_label(name: str) -> str:
    """``name``, or ``_other`` once this process has seen MAX_BUCKET_LABELS names."""
    if name in _bucket_labels:
        return name
    with _bucket_lock:
        if len(_bucket_labels) < MAX_BUCKET_LABELS:
            _bucket_labels.add(name)
            return name
    return OTHER_BUCKET


def record_batch(*, events: TallyCounter, duration_s: float, errors: int) -> None:
    """One stored batch: ``events`` counts (action, bucket) pairs."""
    for (action, bucket), count in events.items():
        EVENTS_CONSUMED.labels(action=action, bucket=bucket_label(bucket)).inc(count)
    BATCH_DURATION.observe(duration_s)
    if errors:
        INGEST_ERRORS.inc(errors)


def record_lag(*, topic: str, partition: int, lag: int) -> None:
    CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(lag)


def record_render(*, viewer: str, duration_s: float, failures: TallyCounter) -> None:
    """One render: its duration under the artifact's viewer, and failed outputs by their viewer."""
    RENDER_DURATION.labels(viewer=viewer).observe(duration_s)
    for failed_viewer, count in failures.items():
        RENDER_FAILURES.labels(viewer=failed_viewer).inc(count)


# --- exposition (vizsite/probes.py) -----------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def exposition() -> tuple[bytes, str]:
    """The text format of every metric: of all processes sharing the multiprocess
    directory when there is one, else of this process."""
    path = multiprocess_dir()
    if path is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry, path=path)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def forget_process(pid: int | None = None) -> None:
    """Drop a finished process's live gauges (``livesum``) from the shared directory."""
    path = multiprocess_dir()
    if path is not None:
        _multiprocess.mark_process_dead(pid or os.getpid(), path)
