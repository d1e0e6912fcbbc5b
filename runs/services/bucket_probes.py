"""Probes of a bucket's event path (docs/operations.md#probe): put a small object, follow its
event through Kafka into the database and out to the channel layer, then remove it.

The hops and who records them:
- put: ``probe_send`` (here), the service's clock once ``put_object`` returned;
- topic: the Kafka record's timestamp (CreateTime, the store's producer), and
- stored: the consumer's clock once the batch holding the event committed, both by
  ``probes_arrived``, which the consumer calls after storing each batch;
- pushed: ``probes_pushed``, called by the live side's listener (``probes_subscribe``,
  subscribed in ``streaming.apps``) once it handed the probe's message to the channel layer.

The probe's key lies in the reserved ``PROBE_SEGMENT`` folder (runs/events.py): the consumer
and the reconciler drop those keys, so a probe, or one left behind when its delete failed,
never becomes a run, an artifact or an IngestError. ``probe_refresh`` decides the outcome
(asked by the console's page while it waits) and removes the object.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from runs.events import PROBE_SEGMENT
from runs.models import Bucket, Probe
from runs.storage import StoreAdminError, probe_object_put, probe_object_remove, store_kind
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.probes")

# Settled probes kept per bucket (the page shows the latest five).
PROBES_KEPT = 20

# How long a probe waits for its event before it fails. Generous: the target is
# under 500 ms (bench/probe.py), so 10 s means something is broken, not slow.
PROBE_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ProbeArrival:
    """A probe object's created event as the consumer read it."""

    key: str
    bucket: str
    topic: str
    topic_at: datetime | None  # the Kafka record's timestamp; None when the broker has none


ProbeListener = Callable[[list[int]], None]
_listeners: list[ProbeListener] = []


def probes_subscribe(listener: ProbeListener) -> None:
    """Call ``listener`` with the ids of probes whose event was stored, after commit (idempotent)."""
    if listener not in _listeners:
        _listeners.append(listener)


def probe_key(*, bucket: Bucket) -> str:
    """A fresh key in the probe folder, inside the bucket's prefix and suffix filters, so that
    the bucket's notification covers it."""
    prefix = bucket.prefix_filter or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"  # "exp" still matches "exp/…"; the probe folder must be a whole segment
    return f"{prefix}{PROBE_SEGMENT}/{uuid.uuid4().hex}{bucket.suffix_filter or '.txt'}"


def probe_send(*, bucket: Bucket) -> Probe:
    """Put a probe object into ``bucket`` and return its row (pending, or failed at the put)."""
    probes_settle(bucket=bucket)
    probe = Probe.objects.create(bucket=bucket, key=probe_key(bucket=bucket))
    body = f"Pipelens probe {probe.pk}: safe to delete.\n".encode()
    try:
        probe_object_put(store=bucket.store, bucket=bucket.name, key=probe.key, data=body)
    except StoreAdminError as exc:
        probe.status, probe.error = Probe.Status.FAILED, f"put failed: {exc}"
        probe.removed_at = timezone.now()  # nothing to remove
        probe.save(update_fields=["status", "error", "removed_at"])
        return probe
    probe.put_at = timezone.now()
    probe.save(update_fields=["put_at"])
    log_event(logger, "probe_sent", bucket=bucket.name, probe=probe.pk)
    return probe


@transaction.atomic
def probes_arrived(*, arrivals: Iterable[ProbeArrival]) -> list[int]:
    """Record the topic and stored hops of the probes these events belong to (the consumer calls
    this once the batch holding them is stored); announce them after commit. Events of unknown
    probe keys (another Pipelens' probes, a replay) change nothing."""
    now = timezone.now()
    ids = []
    for arrival in arrivals:
        updated = (
            Probe.objects.select_for_update()
            .filter(key=arrival.key, bucket__name=arrival.bucket, stored_at__isnull=True)
            .first()
        )
        if updated is None:
            continue
        updated.topic_at, updated.stored_at, updated.event_topic = arrival.topic_at, now, arrival.topic
        updated.save(update_fields=["topic_at", "stored_at", "event_topic"])
        ids.append(updated.pk)
    listeners = list(_listeners)
    if ids and listeners:
        transaction.on_commit(lambda: _notify(listeners, ids))
    return ids


def _notify(listeners: list[ProbeListener], ids: list[int]) -> None:
    for listener in listeners:
        try:
            listener(ids)
        except Exception as exc:  # the stored hop is committed; the missing push shows on the page
            log_event(logger, "probe_listener_failed", level=logging.WARNING, error=repr(exc)[:200])


def probes_pushed(*, probe_ids: Iterable[int], at: datetime | None = None) -> int:
    """Record that the probes' announcement was handed to the channel layer."""
    return Probe.objects.filter(pk__in=list(probe_ids), pushed_at__isnull=True).update(
        pushed_at=at or timezone.now()
    )


def _missing_hop(probe: Probe) -> str:
    if probe.stored_at is None:
        kind = store_kind(probe.bucket.store)
        source = (
            "the filer's notification.toml ([notification.kafka]: enabled, hosts, topic; docs/stores.md)"
            if kind == "seaweedfs"
            else "the bucket's notification rule and its MinIO target (Re-apply notification, MinIO targets)"
        )
        return (
            f"no event came back within {PROBE_TIMEOUT_S:.0f} s: the put succeeded, but nothing reached the "
            f"database (hops topic → stored missing). Check {source}, that the bucket's topic "
            f"{probe.bucket.topic.name if probe.bucket.topic_id else '(none)'} exists and is enabled, "
            "and that consume_events is running."
        )
    return (
        f"the event was stored but never pushed within {PROBE_TIMEOUT_S:.0f} s "
        "(hop stored → pushed missing): check the channel layer (Redis) and the consumer's log."
    )


def probe_refresh(*, probe: Probe, now: datetime | None = None) -> Probe:
    """Settle ``probe``: succeeded once pushed, failed past ``PROBE_TIMEOUT_S``; a settled probe's
    object is removed (its delete event is dropped like its put's). Safe to call repeatedly."""
    now = now or timezone.now()
    probe.refresh_from_db()
    if probe.status == Probe.Status.PENDING:
        if probe.pushed_at is not None:
            probe.status = Probe.Status.SUCCEEDED
        elif now - (probe.put_at or probe.created_at) > timedelta(seconds=PROBE_TIMEOUT_S):
            probe.status, probe.error = Probe.Status.FAILED, _missing_hop(probe)
        if probe.status != Probe.Status.PENDING:
            probe.save(update_fields=["status", "error"])
            log_event(logger, "probe_settled", probe=probe.pk, status=probe.status, **probe.hops_ms())
    if probe.status != Probe.Status.PENDING and probe.removed_at is None:
        _remove(probe)
    return probe


def _remove(probe: Probe) -> None:
    try:
        probe_object_remove(store=probe.bucket.store, bucket=probe.bucket.name, key=probe.key)
    except StoreAdminError as exc:
        # Left behind: harmless (never ingested), retried by the bucket's next probe.
        log_event(logger, "probe_remove_failed", level=logging.WARNING, probe=probe.pk, error=str(exc))
        return
    probe.removed_at = timezone.now()
    probe.save(update_fields=["removed_at"])


def probes_settle(*, bucket: Bucket) -> None:
    """Settle the bucket's earlier probes, so none stays pending or left in the store
    (a page closed while waiting, a delete that failed), and forget all but the latest
    ``PROBES_KEPT`` settled ones."""
    for probe in Probe.objects.filter(bucket=bucket, removed_at__isnull=True).select_related("bucket"):
        probe_refresh(probe=probe)
    done = Probe.objects.filter(bucket=bucket, removed_at__isnull=False).order_by("-created_at", "-id")
    old = list(done.values_list("pk", flat=True)[PROBES_KEPT:])
    if old:
        Probe.objects.filter(pk__in=old).delete()
