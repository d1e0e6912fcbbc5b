"""Writes behind the console's health page (docs/operations.md#health).

Per-minute event counters (one upsert per stored batch), consumer heartbeats,
and what staff do with ingest errors: discard them, or ask for a retry. A retry
of a Kafka message needs its topic's parser, which lives in ``streaming``: the
request only marks the rows, and the consumer's maintenance thread re-parses
them and hands the events back to ``ingest_errors_retried``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from runs.events import ObjectEvent
from runs.models import Bucket, BucketMinute, ConsumerHeartbeat, IngestError
from runs.services.ingest import ingest_events
from runs.services.reconcile import RECONCILE_ERROR_TOPIC, sweep_request

# --- events per minute ------------------------------------------------------------

_MINUTES_UPSERT = """
INSERT INTO runs_bucketminute (bucket_id, minute, events)
SELECT b.id, date_trunc('minute', %s::timestamptz), c.n
FROM unnest(%s::text[], %s::bigint[]) AS c(name, n)
JOIN runs_bucket b ON b.name = c.name
ORDER BY b.id
ON CONFLICT (bucket_id, minute) DO UPDATE SET events = runs_bucketminute.events + EXCLUDED.events
"""


def bucket_minutes_add(*, counts: Mapping[str, int], at: datetime | None = None) -> None:
    """Add a stored batch's events per bucket name to the current minute's counters.

    One statement whatever the number of buckets; names of unregistered buckets
    are ignored. Ordered by bucket so two consumers never deadlock on the rows.
    """
    counts = {name: n for name, n in counts.items() if n > 0}
    if not counts:
        return
    names = sorted(counts)
    with connection.cursor() as cursor:
        cursor.execute(_MINUTES_UPSERT, [at or timezone.now(), names, [counts[n] for n in names]])


def health_prune(*, now: datetime | None = None) -> int:
    """Delete per-minute counters and heartbeats older than HEALTH_KEEP_S; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.HEALTH_KEEP_S)
    minutes, _ = BucketMinute.objects.filter(minute__lt=cutoff).delete()
    beats, _ = ConsumerHeartbeat.objects.filter(last_seen__lt=cutoff).delete()
    return minutes + beats


# --- consumer heartbeats ----------------------------------------------------------


def consumer_heartbeat(
    *,
    hostname: str,
    pid: int,
    group: str,
    started_at: datetime,
    topics: Sequence[str],
    lag: Mapping[str, int],
    now: datetime | None = None,
) -> None:
    """Record that a consume_events process is alive, with what it follows and its lag."""
    ConsumerHeartbeat.objects.update_or_create(
        hostname=hostname[:255],
        pid=pid,
        started_at=started_at,
        defaults={
            "group": group[:255],
            "topics": sorted(topics),
            "lag": dict(lag),
            "last_seen": now or timezone.now(),
        },
    )


# --- ingest errors: discard, retry --------------------------------------------------


def _chosen(ids: Iterable[int] | None, topic: str | None):
    if topic is not None:
        return IngestError.objects.filter(topic=topic)
    return IngestError.objects.filter(pk__in=list(ids or ()))


def ingest_errors_discard(*, ids: Iterable[int] | None = None, topic: str | None = None) -> int:
    """Delete the given ingest errors (or every error of ``topic``); returns how many."""
    removed, _ = _chosen(ids, topic).delete()
    return removed


@dataclass
class RetryRequested:
    """What a retry request did: messages marked for the consumer, sweeps asked for."""

    marked: int = 0
    swept_buckets: list[str] | None = None
    unknown_buckets: list[str] | None = None


@transaction.atomic
def ingest_errors_retry_request(
    *, ids: Iterable[int] | None = None, topic: str | None = None, now: datetime | None = None
) -> RetryRequested:
    """Ask for the given ingest errors (or every error of ``topic``) to be tried again.

    A Kafka message is marked; the consumer's maintenance thread re-parses and
    ingests it (``ingest_errors_retried``). An error of the reconciler (no
    message, only the object's name) is deleted and its bucket swept again:
    the sweep skips keys that still have such an error, and writes a new one
    for a key that still fails. Errors of a bucket no longer registered stay.
    """
    now = now or timezone.now()
    result = RetryRequested(swept_buckets=[], unknown_buckets=[])
    chosen = _chosen(ids, topic)
    result.marked = chosen.exclude(topic=RECONCILE_ERROR_TOPIC).update(retry_requested_at=now)
    reconciled: dict[str, list[int]] = {}
    for pk, key in chosen.filter(topic=RECONCILE_ERROR_TOPIC).values_list("pk", "message_key"):
        name = bytes(key or b"").decode("utf-8", "replace").split("/", 1)[0]
        reconciled.setdefault(name, []).append(pk)
    buckets = {b.name: b for b in Bucket.objects.filter(name__in=list(reconciled))}
    for name, error_ids in sorted(reconciled.items()):
        bucket = buckets.get(name)
        if bucket is None:
            result.unknown_buckets.append(name)
            continue
        IngestError.objects.filter(pk__in=error_ids).delete()
        sweep_request(bucket=bucket)
        result.swept_buckets.append(name)
    return result


@dataclass
class RetryResult:
    """What a retry round did with the messages it was given."""

    succeeded: int = 0
    failed: int = 0


def ingest_errors_retried(*, outcomes: Mapping[int, Sequence[ObjectEvent] | str]) -> RetryResult:
    """Ingest what the consumer re-parsed from marked errors (id -> events, or why parsing failed).

    Per message, in its own transaction: events that are stored now delete the
    error; a message that still fails keeps its row, with the new reason and
    the request cleared. Rows another process holds, or that are no longer
    marked (discarded meanwhile), are skipped.
    """
    result = RetryResult()
    for error_id, outcome in outcomes.items():
        with transaction.atomic():
            row = (
                IngestError.objects.select_for_update(skip_locked=True)
                .filter(pk=error_id, retry_requested_at__isnull=False)
                .first()
            )
            if row is None:
                continue
            reason = outcome if isinstance(outcome, str) else _ingest_again(row, outcome)
            if reason is None:
                row.delete()
                result.succeeded += 1
            else:
                IngestError.objects.filter(pk=row.pk).update(error=reason[:5000], retry_requested_at=None)
                result.failed += 1
    return result


def _ingest_again(row: IngestError, events: Sequence[ObjectEvent]) -> str | None:
    """Store the message's events; None when they were stored, else the new reason.

    ``ingest_events`` writes an IngestError for what it rejects: that new row
    is folded into the old one (its reason kept, the duplicate removed).
    """
    coords = (row.topic, row.partition, row.offset)
    raw = {coords: (bytes(row.message_key) if row.message_key is not None else None, bytes(row.raw or b""))}
    before = IngestError.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    if not ingest_events(events=list(events), raw_messages=raw).rejected:
        return None
    fresh = IngestError.objects.filter(
        pk__gt=before, topic=row.topic, partition=row.partition, offset=row.offset
    ).order_by("pk")
    reasons = list(fresh.values_list("error", flat=True))
    fresh.delete()
    return "; ".join(dict.fromkeys(reasons)) or row.error
