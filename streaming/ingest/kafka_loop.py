"""The ingest loop: Kafka batches in, one database transaction per batch, offsets out.

The only module that touches Kafka offsets (docs/architecture.md). Parsing
lives in ``streaming/ingest/s3_events.py`` (S3/MinIO JSON) and
``streaming/ingest/filer_events.py`` (SeaweedFS filer protobuf), chosen per
message by its topic's ``KafkaTopic.message_format``; storing in
``runs.services.ingest.ingest_events``.

Guarantees:
- offsets are committed only after the batch's transaction has committed;
- a message that cannot be parsed becomes an ``IngestError`` row and the
  loop carries on;
- a lost database stops progress, not the process: the batch is retried
  with back-off and nothing is committed until it is stored;
- a stop request (SIGTERM/SIGINT) finishes the batch in hand, commits it,
  and closes the consumer, which leaves the group cleanly.

Each committed batch's announcements (renders, pushes) run on a thread of
their own (``streaming/ingest/announcer.py``), in order, while the next batch
is stored; a stop waits for them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection

from runs.events import PROBE_SEGMENT, EventAction, ObjectEvent, RejectedMessage, is_probe_key
from runs.models import KafkaTopic
from runs.selectors.topics import enabled_topic_formats
from runs.services.bucket_probes import ProbeArrival, probes_arrived
from runs.services.changes import changes_run_with
from runs.services.health import bucket_minutes_add
from runs.services.ingest import (
    IngestPlan,
    IngestResult,
    ingest_errors_prune,
    ingest_events,
    ingest_plan,
    ingest_planned,
)
from streaming.ingest.announcer import Announcer
from streaming.ingest.filer_events import parse_filer_message
from streaming.ingest.kafka_config import consumer_config
from streaming.ingest.maintenance import ConsumerStatus, Maintenance
from streaming.ingest.s3_events import EventParseError, parse_message
from vizsite import metrics
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.consumer")

# Back-off while the database is unreachable: doubles up to the cap.
_DB_RETRY_FIRST_S = 0.5
_DB_RETRY_MAX_S = 30.0


@dataclass(slots=True)
class ParsedBatch:
    """A batch of Kafka messages turned into events and rejects."""

    events: list[ObjectEvent]
    rejected: list[RejectedMessage]
    raw: dict[tuple[str, int, int], tuple[bytes | None, bytes | None]]
    offsets: dict[tuple[str, int], int]  # (topic, partition) -> next offset to commit
    counts: Counter
    size: int = 0  # messages in the batch, errors included
    by_bucket: Counter = field(default_factory=Counter)  # (action, bucket) -> events, for metrics
    # Made on the consuming thread while the previous batch is stored (None if the
    # database was unreachable then: storing plans it, with its retries).
    plan: IngestPlan | None = None
    probes: list[ProbeArrival] = field(default_factory=list)  # created events of probe objects


_SEAWEEDFS = KafkaTopic.MessageFormat.SEAWEEDFS_FILER.value


def parse_one(msg, message_format: str) -> list[ObjectEvent]:
    """One Kafka message through the parser of its topic's format; raises EventParseError."""
    return _parse_fields(
        msg, message_format, msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value()
    )


def _parse_fields(msg, message_format: str, topic, partition, offset, key, value) -> list[ObjectEvent]:
    if message_format == _SEAWEEDFS:
        kind, timestamp_ms = msg.timestamp()
        return parse_filer_message(
            value,
            key=key,
            topic=topic,
            partition=partition,
            offset=offset,
            timestamp_ms=timestamp_ms if kind != 0 else None,  # 0: TIMESTAMP_NOT_AVAILABLE
        )
    return parse_message(value, key=key, topic=topic, partition=partition, offset=offset)


_STORED = (EventAction.CREATED, EventAction.REMOVED)


def parse_batch(messages, formats: Mapping[str, str] | None = None) -> ParsedBatch:
    """Parse Kafka messages, each with the parser of its topic's format (``formats``:
    topic -> ``KafkaTopic.message_format``; S3 JSON when missing). Nothing here can
    raise for bad message content."""
    formats = formats or {}
    batch = ParsedBatch([], [], {}, {}, Counter(), len(messages))
    # Locals: this loop runs once per message, thousands of times a second.
    offsets, raw, events_out, counts, by_bucket = (
        batch.offsets,
        batch.raw,
        batch.events,
        batch.counts,
        batch.by_bucket,
    )
    for msg in messages:
        err = msg.error()
        if err is not None:
            # Broker-side notices (a subscribed topic not yet created, a
            # partition EOF) are not messages; log them and go on.
            if err.fatal():
                raise KafkaException(err)
            if err.code() != KafkaError._PARTITION_EOF:
                log_event(logger, "kafka_notice", level=logging.WARNING, error=err.str())
            continue
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if offsets.get((topic, partition), 0) <= offset:
            offsets[(topic, partition)] = offset + 1
        key, value = msg.key(), msg.value()
        raw[(topic, partition, offset)] = (key, value)
        try:
            events = _parse_fields(msg, formats.get(topic, ""), topic, partition, offset, key, value)
        except EventParseError as exc:
            batch.rejected.append(RejectedMessage(topic, partition, offset, key, value, str(exc)))
            counts["rejected"] += 1
            continue
        for event in events:
            if PROBE_SEGMENT in event.key and is_probe_key(event.key):
                # The one place probe events leave the stream (docs/operations.md#probe):
                # never resolved, never stored as artifacts; a created one times the probe.
                if event.action == EventAction.CREATED:
                    batch.probes.append(_probe_arrival(msg, event))
                continue
            action = event.action
            counts[action.value] += 1
            by_bucket[(action.value, event.bucket)] += 1
            if action in _STORED:
                events_out.append(event)
    return batch


def _probe_arrival(msg, event: ObjectEvent) -> ProbeArrival:
    kind, timestamp_ms = msg.timestamp()  # kind 0: the broker has no timestamp
    topic_at = datetime.fromtimestamp(timestamp_ms / 1000, UTC) if kind != 0 and timestamp_ms > 0 else None
    return ProbeArrival(key=event.key, bucket=event.bucket, topic=event.topic, topic_at=topic_at)


class IngestConsumer:
    """Runs the consume → store → commit loop until ``stop()`` is called."""

    def __init__(
        self,
        *,
        group_id: str | None = None,
        bootstrap_servers: str | None = None,
        batch_size: int | None = None,
        batch_timeout_s: float | None = None,
        topic_refresh_s: float | None = None,
        maintenance: bool = True,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers or settings.KAFKA_BOOTSTRAP_SERVERS
        self.config = consumer_config(group_id=group_id, bootstrap_servers=self.bootstrap_servers)
        self.batch_size = batch_size or settings.KAFKA_BATCH_SIZE
        self.batch_timeout_s = batch_timeout_s or settings.KAFKA_BATCH_TIMEOUT_S
        self.topic_refresh_s = topic_refresh_s or settings.KAFKA_TOPIC_REFRESH_S
        self._pruned_at = float("-inf")
        self._stop = threading.Event()
        self._topics: list[str] = []
        self._formats: dict[str, str] = {}
        self._topics_checked_at = 0.0
        # Gaps the stream may have (docs/reconcile.md): the maintenance thread
        # sweeps the affected buckets. Disabled by tests of the event path alone.
        self.maintenance = (
            Maintenance(topics=lambda: list(self._topics), status=self._status) if maintenance else None
        )
        self._lag_by_topic: dict[str, int] = {}  # from the last batch, for the heartbeat
        self._brokers_down_since: float | None = None
        self._brokers_checked_at = 0.0
        self._assigned_unchecked: list[TopicPartition] = []
        self.config["error_cb"] = self._on_error

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand and return. Safe from a signal handler."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Consume until stopped. While batch N is stored (in a worker thread, which
        waits on PostgreSQL without holding the GIL), batch N+1 is fetched and
        parsed here; offsets are committed here, in order, once N is stored.
        Every Kafka call stays on this thread."""
        consumer = Consumer(self.config)
        log_event(logger, "consumer_started", group=self.config["group.id"], bootstrap=self.bootstrap_servers)
        storing: Future | None = None
        if self.maintenance is not None:
            self.maintenance.start()
        announcer = Announcer()  # renders and pushes of stored batches, off the storing thread
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-db") as db,
            changes_run_with(announcer),
        ):
            try:
                while not self.stopping:
                    self._follow_topics(consumer)
                    self._check_gaps(consumer)
                    if not self._topics:
                        self._stop.wait(min(self.topic_refresh_s, 1.0))
                        continue
                    messages = consumer.consume(num_messages=self.batch_size, timeout=self.batch_timeout_s)
                    parsed = parse_batch(messages, self._formats) if messages else None
                    if parsed is not None:
                        parsed.plan = self._plan(parsed)
                    if storing is not None:
                        self._finish(consumer, storing)
                        storing = None
                    if parsed is not None:
                        storing = db.submit(self._store_timed, parsed)
                if storing is not None:
                    self._finish(consumer, storing)
            finally:
                # Resolved in the worker: `connection` is per thread.
                db.submit(lambda: connection.close()).result()
                if self.maintenance is not None:
                    self.maintenance.stop()
                announcer.close()  # after the last committer: what they announced goes out
                consumer.close()
                log_event(logger, "consumer_stopped")

    def _follow_topics(self, consumer: Consumer) -> None:
        """Re-read the enabled topics now and then; resubscribe when they change."""
        now = time.monotonic()
        if now - self._topics_checked_at < self.topic_refresh_s:
            return
        try:
            close_old_connections()
            formats = enabled_topic_formats(bootstrap_servers=self.bootstrap_servers)
        except (OperationalError, InterfaceError) as exc:
            log_event(logger, "topics_unavailable", level=logging.WARNING, error=str(exc).strip())
            connection.close()
            self._topics_checked_at = now
            return
        self._topics_checked_at = now
        self._formats = formats
        topics = self._existing(consumer, list(formats))
        if topics == self._topics:
            return
        if topics:
            consumer.subscribe(topics, on_assign=self._on_assign, on_lost=self._on_lost)
        else:
            consumer.unsubscribe()
        log_event(logger, "subscribed", topics=",".join(topics) or "-")
        self._topics = topics

    # --- gaps: what the stream may have lost (docs/reconcile.md) ---

    def _on_error(self, err: KafkaError) -> None:
        """librdkafka's error callback (served by consume(), on this thread)."""
        if err.code() == KafkaError._ALL_BROKERS_DOWN and self._brokers_down_since is None:
            self._brokers_down_since = time.monotonic()
            log_event(logger, "brokers_down", level=logging.WARNING, error=err.str())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Checked on the loop's next turn, not inside the rebalance callback.
        self._assigned_unchecked.extend(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.maintenance is not None:
            self.maintenance.gap({tp.topic for tp in partitions}, "partitions lost")

    def _check_gaps(self, consumer: Consumer) -> None:
        """Report gaps to the maintenance thread: brokers back after being unreachable,
        and newly assigned partitions whose committed offset is missing or beyond retention."""
        if self.maintenance is None:
            return
        now = time.monotonic()
        if self._brokers_down_since is not None and now - self._brokers_checked_at >= 2.0:
            self._brokers_checked_at = now
            try:
                consumer.list_topics(timeout=2)
            except KafkaException:
                return
            down_s = round(now - self._brokers_down_since)
            self._brokers_down_since = None
            # MinIO without a queue dir drops what it could not publish meanwhile.
            self.maintenance.gap(self._topics, f"brokers unreachable for about {down_s} s")
        if self._assigned_unchecked:
            partitions, self._assigned_unchecked = self._assigned_unchecked, []
            lost = set()
            try:
                for tp in consumer.committed(partitions, timeout=10):
                    low, _high = consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                    # No commit yet: the group reads from the earliest retained offset.
                    if max(tp.offset, 0) < low:
                        lost.add(tp.topic)
            except KafkaException as exc:
                log_event(logger, "offsets_unchecked", level=logging.WARNING, error=str(exc))
                return
            if lost:
                self.maintenance.gap(lost, "committed offsets are missing or beyond the topic's retention")

    def _existing(self, consumer: Consumer, topics: list[str]) -> list[str]:
        """The topics that exist in Kafka. Subscribing to a missing one (a row for a
        deleted topic) stalled the whole group for seconds at a time (rebalances
        on every metadata refresh), so it waits, with a warning, until it exists."""
        if not topics:
            return topics
        try:
            known = consumer.list_topics(timeout=5).topics
        except KafkaException as exc:
            log_event(logger, "topics_unavailable", level=logging.WARNING, error=str(exc))
            return self._topics
        missing = [t for t in topics if t not in known or known[t].error is not None]
        if missing:
            log_event(logger, "topic_missing", level=logging.WARNING, topics=",".join(missing))
        return [t for t in topics if t not in missing]

    @staticmethod
    def _plan(batch: ParsedBatch) -> IngestPlan | None:
        """Dedupe and resolve the batch here, on the consuming thread, while the previous
        batch waits on PostgreSQL in the storing thread (the two share one GIL)."""
        try:
            return ingest_plan(events=batch.events, rejected=batch.rejected, raw_messages=batch.raw)
        except (OperationalError, InterfaceError, DatabaseError):
            connection.close()  # this thread's; _follow_topics reconnects it
            return None

    def _store_timed(self, batch: ParsedBatch) -> tuple[ParsedBatch, IngestResult | None, float]:
        started = time.monotonic()
        self._prune_now_and_then(started)
        result = self._store(batch)
        if result is not None:
            self._count_minutes(batch)
        return batch, result, time.monotonic() - started

    @staticmethod
    def _count_minutes(batch: ParsedBatch) -> None:
        """The health page's events per minute per bucket: one upsert per stored batch.
        Outside the batch's transaction: a lost count must never hold back offsets."""
        counts: Counter = Counter()
        for (action, bucket), n in batch.by_bucket.items():
            if action in (EventAction.CREATED.value, EventAction.REMOVED.value):
                counts[bucket] += n
        if not counts:
            return
        try:
            bucket_minutes_add(counts=counts)
        except DatabaseError as exc:
            log_event(logger, "minute_counts_failed", level=logging.WARNING, error=str(exc).strip()[:200])

    def _status(self) -> ConsumerStatus:
        """For the maintenance thread's heartbeat (copies: read from another thread)."""
        return ConsumerStatus(
            group=self.config["group.id"], topics=list(self._topics), lag=dict(self._lag_by_topic)
        )

    def _prune_now_and_then(self, now: float) -> None:
        """Drop IngestErrors past their retention, once per INGEST_ERROR_PRUNE_INTERVAL_S
        (on the database thread, between batches)."""
        if now - self._pruned_at < settings.INGEST_ERROR_PRUNE_INTERVAL_S:
            return
        self._pruned_at = now
        try:
            removed = ingest_errors_prune()
        except (OperationalError, InterfaceError, DatabaseError) as exc:
            log_event(logger, "ingest_errors_prune_failed", level=logging.WARNING, error=repr(exc)[:200])
            return
        if removed:
            log_event(logger, "ingest_errors_pruned", removed=removed)

    def _finish(self, consumer: Consumer, storing: Future) -> None:
        """Wait for a batch to be stored, then commit its offsets and log it."""
        batch, result, duration = storing.result()
        if result is None:
            return  # stopped before the batch was stored: commit nothing
        if batch.offsets:
            try:
                consumer.commit(
                    offsets=[TopicPartition(t, p, o) for (t, p), o in sorted(batch.offsets.items())],
                    asynchronous=False,
                )
            except KafkaException as exc:
                # Lost the partitions (rebalance, long outage): the batch is
                # stored, and its redelivery to the next owner is idempotent.
                log_event(logger, "commit_failed", level=logging.WARNING, error=str(exc))
        metrics.record_batch(events=batch.by_bucket, duration_s=duration, errors=result.rejected)
        log_event(
            logger,
            "batch_stored",
            count=batch.size,
            stored=result.stored,
            stale=result.stale,
            rejected=result.rejected,
            accessed=batch.counts["accessed"],
            runs=len(result.run_seqs),
            duration_ms=round(duration * 1000, 1),
            lag=self._lag(consumer),
        )

    def _store(self, batch: ParsedBatch) -> IngestResult | None:
        """Store the batch, retrying while the database is away. None if stopped first."""
        delay = _DB_RETRY_FIRST_S
        while True:
            try:
                close_old_connections()
                if batch.plan is not None:
                    result = ingest_planned(plan=batch.plan)
                else:
                    result = ingest_events(
                        events=batch.events, rejected=batch.rejected, raw_messages=batch.raw
                    )
                if batch.probes:  # after the batch committed: the probes' "stored" hop
                    probes_arrived(arrivals=batch.probes)
                return result
            except (OperationalError, InterfaceError) as exc:
                log_event(
                    logger,
                    "database_unavailable",
                    level=logging.WARNING,
                    error=str(exc).strip()[:200],
                    retry_in_s=delay,
                )
                connection.close()
            except DatabaseError as exc:
                # Data the database refuses (not an outage): store what it
                # accepts event by event, the rest as IngestErrors.
                log_event(logger, "batch_refused", level=logging.WARNING, error=str(exc).strip()[:200])
                return self._store_one_by_one(batch)
            if self._stop.wait(delay):
                return None
            delay = min(delay * 2, _DB_RETRY_MAX_S)

    def _store_one_by_one(self, batch: ParsedBatch) -> IngestResult:
        total = IngestResult()
        rejected = list(batch.rejected)
        for event in batch.events:
            try:
                result = ingest_events(events=[event], raw_messages=batch.raw)
            except (OperationalError, InterfaceError):
                raise
            except DatabaseError as exc:
                key, raw = batch.raw.get((event.topic, event.partition, event.offset), (None, None))
                rejected.append(
                    RejectedMessage(
                        event.topic,
                        event.partition,
                        event.offset,
                        key,
                        raw,
                        f"database refused the event: {str(exc).strip()[:500]}",
                    )
                )
                continue
            total.stored += result.stored
            total.stale += result.stale
            total.rejected += result.rejected
            total.run_seqs.update(result.run_seqs)
            total.changed_artifact_ids += result.changed_artifact_ids
        if rejected:
            total.rejected += ingest_events(events=[], rejected=rejected).rejected
        if batch.probes:
            probes_arrived(arrivals=batch.probes)
        return total

    def _lag(self, consumer: Consumer) -> int:
        """Messages behind the head over the assigned partitions (from cached watermarks);
        each partition's figure also goes to the lag metric, each topic's to the heartbeat."""
        try:
            lag = 0
            by_topic: Counter = Counter()
            for tp in consumer.position(consumer.assignment()):
                _, high = consumer.get_watermark_offsets(tp, cached=True)
                by_topic[tp.topic] += 0
                if tp.offset >= 0 and high >= 0:
                    lag += max(high - tp.offset, 0)
                    by_topic[tp.topic] += max(high - tp.offset, 0)
                    metrics.record_lag(topic=tp.topic, partition=tp.partition, lag=max(high - tp.offset, 0))
            self._lag_by_topic = dict(by_topic)
            return lag
        except KafkaException:
            return -1
