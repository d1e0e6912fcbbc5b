"""What the console's health page reads (docs/operations.md#health), from the database only.

Every figure comes from a small table or an index, never from counting
artifacts: events per minute from ``BucketMinute`` (written once per stored
batch), consumer lag from the processes' heartbeats, ingest errors through
their per-topic index, render failures through a partial index on failed
renditions. A fixed number of queries whatever the number of buckets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from runs.models import (
    Bucket,
    BucketMinute,
    BucketSweep,
    ConsumerHeartbeat,
    IngestError,
    KafkaTopic,
    Rendition,
)

CHART_MINUTES = 60
LATEST_REASONS = 5


@dataclass
class BucketHealth:
    bucket: Bucket
    minutes: list[int]  # events per minute, oldest first, the last one is the current minute
    last_sweep: BucketSweep | None

    @property
    def events_last_hour(self) -> int:
        return sum(self.minutes)


@dataclass
class ErrorRow:
    id: int
    partition: int
    offset: int
    error: str
    created_at: datetime
    retry_requested_at: datetime | None


@dataclass
class TopicHealth:
    name: str
    topic: KafkaTopic | None  # None: errors of a topic Pipelens no longer knows, or the reconciler's
    lag: int | None  # over the alive consumers' assigned partitions; None: no alive consumer reported it
    errors: int = 0
    retry_pending: int = 0
    latest: list[ErrorRow] = field(default_factory=list)


@dataclass
class ConsumerHealth:
    heartbeat: ConsumerHeartbeat
    alive: bool


@dataclass
class Health:
    now: datetime
    buckets: list[BucketHealth]
    topics: list[TopicHealth]
    consumers: list[ConsumerHealth]
    render_failures: dict[str, int]  # viewer -> failed renditions in the last hour


def health_overview(*, now: datetime | None = None) -> Health:
    """Everything the health page shows except the queue lengths (``runs.queues``)."""
    now = now or timezone.now()
    consumers = [
        ConsumerHealth(beat, now - beat.last_seen <= timedelta(seconds=settings.HEALTH_ALIVE_S))
        for beat in ConsumerHeartbeat.objects.order_by("-last_seen")
    ]
    return Health(
        now=now,
        buckets=_buckets(now),
        topics=_topics(consumers),
        consumers=consumers,
        render_failures=dict(
            Rendition.objects.filter(status=Rendition.Status.FAILED, updated_at__gte=now - timedelta(hours=1))
            .values_list("viewer")
            .annotate(n=Count("id"))
            .order_by("viewer")
        ),
    )


def _buckets(now: datetime) -> list[BucketHealth]:
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=CHART_MINUTES - 1)
    minutes: dict[int, list[int]] = defaultdict(lambda: [0] * CHART_MINUTES)
    # The minute's index computed by PostgreSQL: turning 6,000 timestamps (100 buckets × 60
    # minutes) into Python datetimes took most of the page's time.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT bucket_id, (EXTRACT(EPOCH FROM minute - %s) / 60)::int, events"
            f" FROM {BucketMinute._meta.db_table} WHERE minute >= %s",
            [first, first],
        )
        for bucket_id, index, events in cursor.fetchall():
            if 0 <= index < CHART_MINUTES:
                minutes[bucket_id][index] += events
    last_sweeps = {
        s.bucket_id: s
        for s in BucketSweep.objects.order_by("bucket_id", "-requested_at").distinct("bucket_id")
    }
    return [
        BucketHealth(bucket=b, minutes=list(minutes[b.pk]), last_sweep=last_sweeps.get(b.pk))
        for b in Bucket.objects.select_related("topic")
        .only("id", "name", "last_event_at", "topic__id", "topic__name")  # what the page shows
        .order_by("name")
    ]


def _topics(consumers: list[ConsumerHealth]) -> list[TopicHealth]:
    lag: dict[str, int] = {}
    for c in consumers:
        if c.alive:
            for name, behind in (c.heartbeat.lag or {}).items():
                lag[name] = lag.get(name, 0) + max(int(behind), 0)
    topics = {t.name: TopicHealth(t.name, t, lag.get(t.name)) for t in KafkaTopic.objects.order_by("name")}
    for name in sorted(lag):  # followed by a consumer of another installation's database rows
        topics.setdefault(name, TopicHealth(name, None, lag[name]))
    counts = (
        IngestError.objects.values_list("topic")
        .annotate(n=Count("id"), retry=Count("id", filter=Q(retry_requested_at__isnull=False)))
        .order_by("topic")
    )
    for name, n, retry in counts:
        health = topics.setdefault(name, TopicHealth(name, None, lag.get(name)))
        health.errors, health.retry_pending = n, retry
    with_errors = [t.name for t in topics.values() if t.errors]
    if with_errors:
        for row in _latest_errors(with_errors):
            topics[row[0]].latest.append(ErrorRow(*row[1:]))
    return list(topics.values())


def _latest_errors(topics: list[str]) -> list[tuple]:
    """The newest LATEST_REASONS errors of each topic, through ingesterror_topic_idx."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT t.name, e.id, e.partition, e."offset", e.error, e.created_at, e.retry_requested_at
            FROM unnest(%s::text[]) AS t(name)
            CROSS JOIN LATERAL (
                SELECT id, partition, "offset", error, created_at, retry_requested_at
                FROM runs_ingesterror WHERE topic = t.name ORDER BY created_at DESC LIMIT %s
            ) e
            ORDER BY t.name, e.created_at DESC
            """,
            [topics, LATEST_REASONS],
        )
        return cursor.fetchall()


def ingest_errors_retry_pending(*, limit: int = 200) -> list[IngestError]:
    """Ingest errors staff asked to retry, oldest request first (for the consumer)."""
    return list(
        IngestError.objects.filter(retry_requested_at__isnull=False)
        .exclude(topic="(reconcile)")
        .order_by("retry_requested_at", "id")[:limit]
    )


def topic_formats() -> dict[str, str]:
    """Every known topic's ``message_format`` (retries re-parse with it, enabled or not)."""
    return dict(KafkaTopic.objects.values_list("name", "message_format"))
