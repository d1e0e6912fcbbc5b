"""Reconciliation: bring the database in line with what a bucket holds (docs/reconcile.md).

Events are the fast path; the bucket is the source of truth. A sweep lists a
bucket (or a prefix of it) in key order and merges it with the stored
artifacts, read in the same order, one page at a time; then it stores the differences
through the ingest service, as synthetic events under the same newer-wins rule
as real ones:

- an object the database lacks, or holds with another etag, or holds as
  deleted, is stored as *created*, ordered by its modification time from the
  listing. MinIO's sequencer (a real event's order) is the same time in ns
  where the listing has ms, SeaweedFS's is later than the listing's seconds,
  so a real event for the same version always wins or ties;
- a key the database holds that the listing no longer shows is stored as
  *removed*, but only when its last event is older than the moment the
  listing began: an upload in flight, stored from its event while the sweep
  runs, is never taken for a deletion.

A removal the reconciler itself stored is marked (``Artifact.sequencer ==
RECONCILED``); should a later listing show that key again (an upload that
finished just as the listing passed it), the listing wins over the mark, so
a wrong guess heals at the next sweep.

Memory is bounded by the page size whatever the bucket holds. Each page is
one transaction that also moves the sweep's persisted cursor, so a sweep
killed half-way resumes after its last page, with its original start time.
A PostgreSQL advisory lock keeps two processes from sweeping the same
(bucket, prefix) at once; sweeps of overlapping prefixes are safe (every
write goes through the newer-wins guard).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from runs.events import EventAction, ObjectEvent, is_probe_key
from runs.models import Artifact, Bucket, BucketSweep, IngestError, Run
from runs.rendering.base import StorageUnavailable
from runs.services.ingest import ingest_events
from runs.storage import ListedObject, ListingOutOfOrder, objects_list
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.reconcile")

# Artifact.sequencer of a version (or removal) the reconciler stored.
RECONCILED = "reconcile"
# IngestError.topic of a listed key that resolves to no run (no Kafka coordinates).
RECONCILE_ERROR_TOPIC = "(reconcile)"
# First key of advisory locks taken by sweeps ("PLsw"); the second is the (bucket, prefix) hash.
_LOCK_CLASS = 0x504C7377
_OPEN = (BucketSweep.Status.REQUESTED, BucketSweep.Status.RUNNING)


@dataclass(frozen=True, slots=True)
class SweepTarget:
    """What a sweep covers and how its finds are rendered."""

    bucket_id: int
    prefix: str
    reason: str
    lazy_render: bool = False


def _ns(at: datetime) -> int:
    return int(at.timestamp()) * 10**9 + at.microsecond * 1000


# --- requesting -------------------------------------------------------------------


def sweep_request(
    *, bucket: Bucket, prefix: str = "", reason: str = BucketSweep.Reason.MANUAL, lazy_render: bool = False
) -> BucketSweep:
    """Ask for a sweep (the consumer's maintenance thread runs it). Idempotent: while a
    sweep of the same (bucket, prefix) is open, that one is returned."""
    for _ in range(3):
        existing = BucketSweep.objects.filter(bucket=bucket, prefix=prefix, status__in=_OPEN).first()
        if existing is not None:
            return existing
        try:
            with transaction.atomic():
                return BucketSweep.objects.create(
                    bucket=bucket, prefix=prefix, reason=reason, lazy_render=lazy_render
                )
        except IntegrityError:
            continue  # opened concurrently: return that one
    raise RuntimeError("could not open a sweep")  # pragma: no cover - three lost races in a row


# --- running ----------------------------------------------------------------------


class SweepBusy(Exception):
    """Another process is sweeping this (bucket, prefix) right now."""


def bucket_reconcile(
    *,
    bucket: Bucket,
    prefix: str = "",
    reason: str = BucketSweep.Reason.MANUAL,
    lazy_render: bool = False,
    since: datetime | None = None,
    page_size: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    progress: Callable[[BucketSweep], None] | None = None,
) -> BucketSweep:
    """Sweep ``prefix`` of ``bucket`` now, in this thread, resuming an open sweep of the
    same (bucket, prefix) if a killed process left one. Returns the sweep row (status
    ``done``, ``failed``, or still ``running`` when ``should_stop`` interrupted it).
    Raises ``SweepBusy`` when another process holds the sweep's lock."""
    lock = (_LOCK_CLASS, zlib.crc32(f"{bucket.pk}\0{prefix}".encode()) - 2**31)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int, %s::int)", lock)
        if not cursor.fetchone()[0]:
            raise SweepBusy(f"bucket {bucket.name!r} prefix {prefix!r} is being swept by another process")
    try:
        sweep = _open(bucket=bucket, prefix=prefix, reason=reason, lazy_render=lazy_render, since=since)
        return _run(sweep, bucket, page_size or settings.RECONCILE_PAGE_SIZE, should_stop, progress)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s::int, %s::int)", lock)


def _open(*, bucket, prefix, reason, lazy_render, since) -> BucketSweep:
    """The open sweep of (bucket, prefix), started now unless it is being resumed."""
    with transaction.atomic():
        sweep = (
            BucketSweep.objects.select_for_update()
            .filter(bucket=bucket, prefix=prefix, status__in=_OPEN)
            .first()
        )
        if sweep is None:
            sweep = BucketSweep(bucket=bucket, prefix=prefix, reason=reason, lazy_render=lazy_render)
        elif sweep.status == BucketSweep.Status.RUNNING and sweep.since != since:
            # A killed sweep with another --since: its cursor means nothing for this one.
            sweep.cursor, sweep.started_at = "", None
        # Found only by a lazy sweep: lazy; any eager request for the prefix makes it eager.
        sweep.lazy_render = sweep.lazy_render and lazy_render if sweep.pk else lazy_render
        sweep.since = since
        if sweep.started_at is None:
            sweep.started_at = timezone.now()
            sweep.listed = sweep.stored = sweep.deleted = sweep.rejected = 0
        elif sweep.status == BucketSweep.Status.RUNNING:
            log_event(logger, "sweep_resumed", bucket=bucket.name, prefix=prefix, after=sweep.cursor[:200])
        sweep.status = BucketSweep.Status.RUNNING
        sweep.save()
        return sweep


def _run(sweep, bucket, page_size, should_stop, progress) -> BucketSweep:
    """Merge the listing with the stored rows, both in key order and both read a page at a
    time: memory stays bounded even where the database holds millions of keys between two
    listed ones (a bucket emptied by lifecycle rules). Every ``page_size`` keys, the
    differences are stored and the cursor moves, in one transaction."""
    log_event(logger, "sweep_started", bucket=bucket.name, prefix=sweep.prefix, reason=sweep.reason)
    started_ns = _ns(sweep.started_at)
    since = sweep.since
    try:
        listing = objects_list(
            bucket=bucket.name, store=bucket.store, prefix=sweep.prefix, start_after=sweep.cursor
        )
        stored = _stored_after(bucket.pk, sweep.prefix, sweep.cursor, page_size)
        obj, row = next(listing, None), next(stored, None)
        events: list[ObjectEvent] = []
        listed = seen = 0
        last = sweep.cursor
        while obj is not None or row is not None:
            if row is None or (obj is not None and obj.key < row[0]):
                last, listed = obj.key, listed + 1
                events += _listed(bucket, obj, None, since)
                obj = next(listing, None)
            elif obj is None or row[0] < obj.key:
                last = row[0]
                if not since:  # a deliberately partial listing deletes nothing
                    events += _removals(bucket, [row], sweep.started_at, started_ns)
                row = next(stored, None)
            else:
                last, listed = obj.key, listed + 1
                events += _listed(bucket, obj, row, since)
                obj, row = next(listing, None), next(stored, None)
            seen += 1
            if seen >= page_size:
                _store(sweep, bucket, events, listed=listed, cursor=last)
                events, listed, seen = [], 0, 0
                if progress:
                    progress(sweep)
                if should_stop():
                    return sweep
        if seen:
            _store(sweep, bucket, events, listed=listed, cursor=last)
    except (StorageUnavailable, ListingOutOfOrder) as exc:
        return _finish(sweep, BucketSweep.Status.FAILED, str(exc))
    if progress:
        progress(sweep)
    return _finish(sweep, BucketSweep.Status.DONE, "")


def _finish(sweep: BucketSweep, status: str, error: str) -> BucketSweep:
    sweep.status, sweep.error, sweep.finished_at = status, error[:5000], timezone.now()
    sweep.save(update_fields=["status", "error", "finished_at", "updated_at"])
    log_event(
        logger,
        "sweep_finished",
        level=logging.WARNING if error else logging.INFO,
        bucket=sweep.bucket_id,
        prefix=sweep.prefix,
        status=status,
        listed=sweep.listed,
        stored=sweep.stored,
        deleted=sweep.deleted,
        error=error[:200],
    )
    _prune_history(sweep.bucket_id)
    return sweep


def _prune_history(bucket_id: int) -> None:
    keep = (
        BucketSweep.objects.filter(bucket_id=bucket_id)
        .exclude(status__in=_OPEN)
        .order_by("-finished_at", "-id")
        .values_list("id", flat=True)[: settings.RECONCILE_HISTORY]
    )
    BucketSweep.objects.filter(bucket_id=bucket_id).exclude(status__in=_OPEN).exclude(
        id__in=list(keep)
    ).delete()


# --- comparing --------------------------------------------------------------------


def _stored_rows(bucket_id: int, prefix: str, after: str, limit: int) -> list[tuple]:
    """(key, etag, deleted, event_order, event_time, sequencer) of the first ``limit`` stored
    artifacts after ``after`` in key order (the (bucket, key) index, "C" collation)."""
    rows = Artifact.objects.filter(bucket_id=bucket_id)
    if prefix:
        rows = rows.filter(key__startswith=prefix)
    if after:
        rows = rows.filter(key__gt=after)
    fields = ("key", "etag", "deleted", "event_order", "event_time", "sequencer")
    return list(rows.order_by("key").values_list(*fields)[:limit])


def _stored_after(bucket_id: int, prefix: str, after: str, page_size: int) -> Iterator[tuple]:
    """Stored rows after ``after`` in key order, read ``page_size`` at a time (keyset pages)."""
    while True:
        rows = _stored_rows(bucket_id, prefix, after, page_size)
        yield from rows
        if len(rows) < page_size:
            return
        after = rows[-1][0]


def _listed(
    bucket: Bucket, obj: ListedObject, row: tuple | None, since: datetime | None
) -> list[ObjectEvent]:
    """The created event a listed object needs, if any (``row``: what is stored for its key)."""
    if is_probe_key(obj.key):
        return []  # a probe left behind (docs/operations.md#probe): never a run
    if since and obj.last_modified < since:
        return []
    if row is not None and not row[2] and row[1] == obj.etag:
        return []  # unchanged
    order = _ns(obj.last_modified)
    if row is not None and row[2] and row[5] == RECONCILED:
        order = max(order, row[3] + 1)  # our own removal was wrong: the listing wins
    return [_created(bucket, obj, order)]


def _removals(bucket: Bucket, rows, listing_started: datetime, started_ns: int) -> list[ObjectEvent]:
    return [
        ObjectEvent(
            bucket=bucket.name,
            key=key,
            action=EventAction.REMOVED,
            event_name="s3:ObjectRemoved:Reconciled",
            event_time=listing_started,
            order=max(started_ns, order + 1),
            sequencer=RECONCILED,
            topic=RECONCILE_ERROR_TOPIC,
        )
        for key, _etag, deleted, order, event_time, _seq in rows
        if not deleted and event_time < listing_started
    ]


def _created(bucket: Bucket, obj: ListedObject, order: int) -> ObjectEvent:
    return ObjectEvent(
        bucket=bucket.name,
        key=obj.key,
        action=EventAction.CREATED,
        event_name="s3:ObjectCreated:Reconciled",
        event_time=obj.last_modified.astimezone(UTC),
        order=order,
        size=obj.size,
        etag=obj.etag,
        sequencer=RECONCILED,
        topic=RECONCILE_ERROR_TOPIC,
    )


def _store(
    sweep: BucketSweep, bucket: Bucket, events: list[ObjectEvent], *, listed: int, cursor: str
) -> None:
    """Store one page's differences and move the cursor, in one transaction."""
    events = _without_known_rejects(bucket, events)
    created = [e for e in events if e.action == EventAction.CREATED]
    removed = [e for e in events if e.action == EventAction.REMOVED]
    stored = deleted = rejected = 0
    render = not sweep.lazy_render
    with transaction.atomic():
        if created:
            result = ingest_events(events=created, render=render)
            stored, rejected = result.stored, result.rejected
        if removed:
            deleted = ingest_events(events=removed, render=render).stored
        BucketSweep.objects.filter(pk=sweep.pk).update(
            cursor=cursor,
            listed=F("listed") + listed,
            stored=F("stored") + stored,
            deleted=F("deleted") + deleted,
            rejected=F("rejected") + rejected,
            updated_at=timezone.now(),
        )
    sweep.cursor = cursor
    sweep.listed += listed
    sweep.stored += stored
    sweep.deleted += deleted
    sweep.rejected += rejected


def _without_known_rejects(bucket: Bucket, events: list[ObjectEvent]) -> list[ObjectEvent]:
    """Drop created events for keys an earlier sweep already recorded as unresolvable,
    so a daily sweep does not add the same IngestError every day."""
    created = [e for e in events if e.action == EventAction.CREATED]
    if not created:
        return events
    names = {f"{bucket.name}/{e.key}".encode(): e for e in created}
    known = set(
        bytes(k)
        for k in IngestError.objects.filter(
            topic=RECONCILE_ERROR_TOPIC, message_key__in=list(names)
        ).values_list("message_key", flat=True)
    )
    if not known:
        return events
    skip = {id(names[k]) for k in known}
    return [e for e in events if id(e) not in skip]


# --- what is due ------------------------------------------------------------------


def sweeps_requested() -> list[BucketSweep]:
    """Sweeps staff (or a gap) asked for, oldest first."""
    return list(
        BucketSweep.objects.filter(status=BucketSweep.Status.REQUESTED)
        .select_related("bucket")
        .order_by("id")
    )


def full_sweep_due(*, bucket: Bucket, now: datetime | None = None) -> bool:
    """Whether the bucket's last finished whole-bucket sweep is older than
    RECONCILE_FULL_INTERVAL_S, unless one failed within RECONCILE_RETRY_S (a store that
    refuses the listing is retried now and then, not on every tick of the thread)."""
    now = now or timezone.now()
    whole = BucketSweep.objects.filter(bucket=bucket, prefix="", since=None)
    last_done = (
        whole.filter(status=BucketSweep.Status.DONE)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
    ).first()
    if last_done is not None and now - last_done < timedelta(seconds=settings.RECONCILE_FULL_INTERVAL_S):
        return False
    last_failed = (
        whole.filter(status=BucketSweep.Status.FAILED)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
    ).first()
    return last_failed is None or now - last_failed >= timedelta(seconds=settings.RECONCILE_RETRY_S)


def recent_run_prefixes(*, bucket: Bucket, since: datetime) -> list[str]:
    """The key prefixes of the bucket's runs with an event since ``since``, the
    RECONCILE_RECENT_MAX_RUNS most recent: what a recent sweep lists. A run's key is the
    folder its objects live under (runs/layouts.py). One listing per run: with thousands
    of runs active within the window, listing each every minute would cost more than
    the stream it checks, so the rest wait for the daily sweep (or a gap's)."""
    keys = (
        Run.objects.filter(bucket=bucket, last_event_at__gte=since)
        .order_by("-last_event_at")
        .values_list("run_key", flat=True)[: settings.RECONCILE_RECENT_MAX_RUNS]
    )
    return sorted(f"{key}/" for key in keys)
