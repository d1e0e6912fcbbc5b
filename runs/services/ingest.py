"""Ingest: store one consumer batch of object events in one transaction.

See docs/architecture.md. Raw SQL is
used for the upserts because the ORM cannot say "update only if newer"
(``ON CONFLICT ... DO UPDATE ... WHERE``) nor return which rows changed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

import orjson
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from runs.events import EventAction, ObjectEvent, RejectedMessage
from runs.kinds import guess_kind
from runs.layouts import ResolvedKey, UnresolvableKey, resolve_key
from runs.models import FINAL_STATUSES, KFP_PROGRESS_STATUSES, Artifact, Bucket, IngestError, Run, Step
from runs.services.changes import changes_on_commit

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestResult:
    """What one batch changed; returned to the consumer for its log line."""

    stored: int = 0  # artifact rows inserted or updated
    stale: int = 0  # events that lost to a newer one already stored
    rejected: int = 0  # IngestError rows written
    changed_artifact_ids: list[int] = field(default_factory=list)
    run_seqs: dict[int, int] = field(default_factory=dict)  # run id -> new seq


def _newest_per_key(events: Iterable[ObjectEvent]) -> list[ObjectEvent]:
    """Dedupe a batch by (bucket, key), keeping the newest event of each key."""
    newest: dict[tuple[str, str], ObjectEvent] = {}
    for event in events:
        ident = (event.bucket, event.key)
        seen = newest.get(ident)
        if seen is None or (event.order, event.offset) > (seen.order, seen.offset):
            newest[ident] = event
    return list(newest.values())


# --- rows as the statements read them ------------------------------------------------
# Each statement reads its rows from one JSON parameter (``_json_rows``), by
# position. The NamedTuples below are the one statement of each row's columns,
# their order and types: the SQL column list is generated from them, so SQL
# and Python cannot drift.


class RunRow(NamedTuple):
    bucket_id: int
    run_key: str
    name: str
    pipeline: str
    namespace: str
    layout: str
    first_at: datetime
    last_at: datetime


class StepRow(NamedTuple):
    run_id: int
    name: str
    first_at: datetime
    last_at: datetime


class ArtifactRow(NamedTuple):
    run_id: int
    step_id: int
    bucket_id: int
    key: str
    name: str
    kind: str
    size: int | None
    etag: str
    content_type: str
    version_id: str
    sequencer: str
    event_order: int
    event_time: datetime
    deleted: bool


class CountDelta(NamedTuple):
    id: int
    delta: int


_SQL_TYPES = {
    "int": "bigint",
    "int | None": "bigint",
    "str": "text",
    "datetime": "timestamptz",
    "bool": "boolean",
}


def _json_rows(row_type: type[NamedTuple]) -> str:
    """A FROM clause reading a JSON array of ``row_type`` rows, one typed column per field.

    A whole batch travels as one JSON parameter: encoding it is one C call in
    Python and one parse in PostgreSQL, several times cheaper than adapting a
    parameter per cell or an array per column, and the statement text stays
    constant.
    """
    # Annotations are forward references here (``from __future__ import annotations``).
    types = {name: getattr(typ, "__forward_arg__", typ) for name, typ in row_type.__annotations__.items()}
    select = ", ".join(
        f"(r->>{i})::{_SQL_TYPES[typ]} AS {name}" for i, (name, typ) in enumerate(types.items())
    )
    return f"(SELECT {select} FROM jsonb_array_elements(%s::jsonb) AS r) AS v"


# A newer event makes an idle run or step active again; Kubeflow's states and
# the final ones stay, and so does everything when only older objects arrive
# (a backfill or a listing must not wake a quiet run): docs/portal.md#run-status.
_STATUS_ON_EVENT = (
    "status = CASE WHEN {table}.status IN "
    f"({', '.join(repr(s) for s in (*FINAL_STATUSES, *KFP_PROGRESS_STATUSES))}) "
    "OR EXCLUDED.last_event_at <= {table}.last_event_at THEN {table}.status ELSE 'active' END"
)

_UPSERT_RUNS = f"""
    INSERT INTO runs_run (bucket_id, run_key, name, pipeline, namespace, layout,
                          first_event_at, last_event_at, status, artifact_count, seq)
    SELECT v.bucket_id, v.run_key, v.name, v.pipeline, v.namespace, v.layout,
           v.first_at, v.last_at, 'active', 0, 1
    FROM {_json_rows(RunRow)}
    ON CONFLICT (bucket_id, run_key) DO UPDATE SET
        first_event_at = LEAST(runs_run.first_event_at, EXCLUDED.first_event_at),
        last_event_at = GREATEST(runs_run.last_event_at, EXCLUDED.last_event_at),
        {_STATUS_ON_EVENT.format(table="runs_run")},
        seq = runs_run.seq + 1
    RETURNING id, bucket_id, run_key, seq
"""

_UPSERT_STEPS = f"""
    INSERT INTO runs_step (run_id, name, first_event_at, last_event_at, status, artifact_count)
    SELECT v.run_id, v.name, v.first_at, v.last_at, 'active', 0
    FROM {_json_rows(StepRow)}
    ON CONFLICT (run_id, name) DO UPDATE SET
        first_event_at = LEAST(runs_step.first_event_at, EXCLUDED.first_event_at),
        last_event_at = GREATEST(runs_step.last_event_at, EXCLUDED.last_event_at),
        {_STATUS_ON_EVENT.format(table="runs_step")}
    RETURNING id, run_id, name
"""

# A removed event keeps the last known size/etag/type for the record. The
# WHERE clause is the newer-wins guard: an event that is not strictly newer
# than the stored one changes nothing (and is not returned). ``old`` reads
# the rows as they were before this statement (one snapshot for the whole
# statement), so each changed row comes back with its previous run, step and
# deleted flag: enough to adjust live-artifact counts by difference instead
# of recounting whole runs. ``old`` is MATERIALIZED: inlined, PostgreSQL
# planned it as a nested loop that rescanned the whole batch for every changed
# row (it estimates 100 rows for ``jsonb_array_elements``): a third of the
# statement's time on a 2,000-event batch (docs/performance.md#ingest).
_UPSERT_ARTIFACTS = f"""
    WITH v AS (
        SELECT * FROM {_json_rows(ArtifactRow)}
    ),
    old AS MATERIALIZED (
        SELECT a.bucket_id, a.key, a.run_id, a.step_id, a.deleted
        FROM runs_artifact a JOIN v ON a.bucket_id = v.bucket_id AND a.key = v.key
    ),
    up AS (
        INSERT INTO runs_artifact (run_id, step_id, bucket_id, key, name, kind, size, etag,
                                   content_type, version_id, sequencer, event_order,
                                   event_time, deleted, created_at, updated_at)
        SELECT run_id, step_id, bucket_id, key, name, kind, size, etag, content_type, version_id,
               sequencer, event_order, event_time, deleted, now(), now()
        FROM v
        ON CONFLICT (bucket_id, key) DO UPDATE SET
            run_id = EXCLUDED.run_id,
            step_id = EXCLUDED.step_id,
            name = EXCLUDED.name,
            kind = EXCLUDED.kind,
            size = CASE WHEN EXCLUDED.deleted THEN runs_artifact.size ELSE EXCLUDED.size END,
            etag = CASE WHEN EXCLUDED.deleted THEN runs_artifact.etag ELSE EXCLUDED.etag END,
            content_type = CASE WHEN EXCLUDED.deleted THEN runs_artifact.content_type
                                ELSE EXCLUDED.content_type END,
            version_id = EXCLUDED.version_id,
            sequencer = EXCLUDED.sequencer,
            event_order = EXCLUDED.event_order,
            event_time = EXCLUDED.event_time,
            deleted = EXCLUDED.deleted,
            updated_at = now()
        WHERE runs_artifact.event_order < EXCLUDED.event_order
        RETURNING id, bucket_id, key, run_id, step_id, deleted
    )
    SELECT up.id, up.run_id, up.step_id, up.deleted, old.run_id, old.step_id, old.deleted
    FROM up LEFT JOIN old ON old.bucket_id = up.bucket_id AND old.key = up.key
"""

_ADD_COUNTS = {
    table: f"UPDATE {table} t SET artifact_count = t.artifact_count + v.delta "
    f"FROM {_json_rows(CountDelta)} WHERE t.id = v.id"
    for table in ("runs_run", "runs_step")
}


def _rows_json(rows: Sequence[tuple]) -> str:
    # orjson writes datetimes as RFC 3339, which the ::timestamptz casts read;
    # NamedTuples go out as plain arrays, in field order.
    return orjson.dumps(rows, default=tuple).decode()


def _upsert_runs(cursor, runs: dict[tuple[int, str], dict]) -> dict[tuple[int, str], tuple[int, int]]:
    """Insert or touch runs; returns (bucket id, run key) -> (run id, seq)."""
    # Sorted so that concurrent consumers lock rows in the same order.
    rows = [
        RunRow(
            r["bucket_id"],
            r["run_key"],
            r["name"],
            r["pipeline"],
            r["namespace"],
            r["layout"],
            r["first"],
            r["last"],
        )
        for _, r in sorted(runs.items())
    ]
    cursor.execute(_UPSERT_RUNS, [_rows_json(rows)])
    return {(bucket_id, run_key): (run_id, seq) for run_id, bucket_id, run_key, seq in cursor.fetchall()}


def _upsert_steps(cursor, steps: dict[tuple[int, str], dict]) -> dict[tuple[int, str], int]:
    """Insert or touch steps; returns (run id, step name) -> step id."""
    rows = [StepRow(s["run_id"], s["name"], s["first"], s["last"]) for _, s in sorted(steps.items())]
    cursor.execute(_UPSERT_STEPS, [_rows_json(rows)])
    return {(run_id, name): step_id for step_id, run_id, name in cursor.fetchall()}


def _upsert_artifacts(cursor, rows: list[ArtifactRow]) -> list[tuple]:
    """Insert or update artifacts, newer event wins.

    Returns one tuple per changed row: (id, run_id, step_id, deleted,
    old_run_id, old_step_id, old_deleted); the old values are None for a new row.
    """
    rows = sorted(rows, key=lambda r: (r.bucket_id, r.key))  # stable lock order
    cursor.execute(_UPSERT_ARTIFACTS, [_rows_json(rows)])
    return cursor.fetchall()


def _adjust_counts(cursor, changed: list[tuple]) -> None:
    """Apply the live-artifact count differences of the changed rows to runs and steps."""
    runs: dict[int, int] = {}
    steps: dict[int, int] = {}
    for _, run_id, step_id, deleted, old_run_id, old_step_id, old_deleted in changed:
        if not deleted:
            runs[run_id] = runs.get(run_id, 0) + 1
            steps[step_id] = steps.get(step_id, 0) + 1
        if old_run_id is not None and not old_deleted:
            runs[old_run_id] = runs.get(old_run_id, 0) - 1
            steps[old_step_id] = steps.get(old_step_id, 0) - 1
    for table, deltas in (("runs_run", runs), ("runs_step", steps)):
        rows = sorted(CountDelta(row_id, delta) for row_id, delta in deltas.items() if delta)
        if rows:
            cursor.execute(_ADD_COUNTS[table], [_rows_json(rows)])


# Pure, and the same few artifact names come back in every run (KFP's outputs).
_guess_kind = functools.lru_cache(maxsize=4096)(guess_kind)


def _bucket_map(names: set[str]) -> dict[str, Bucket]:
    return {b.name: b for b in Bucket.objects.filter(name__in=names)}


@transaction.atomic
def ingest_events(
    *,
    events: Sequence[ObjectEvent],
    rejected: Sequence[RejectedMessage] = (),
    raw_messages: Mapping[tuple[str, int, int], tuple[bytes | None, bytes | None]] | None = None,
    render: bool = True,
) -> IngestResult:
    """Store one consumer batch: events become runs/steps/artifacts, rejects become IngestErrors.

    One transaction for the whole batch, so the caller may commit its Kafka
    offsets once this returns. Idempotent: replaying a batch changes nothing.
    Accessed and metadata-only events are skipped (the caller counts them).
    ``raw_messages`` maps (topic, partition, offset) to the message's (key,
    value) so that an event whose key resolves to no run is kept verbatim.
    ``render=False`` (backfill, full sweeps) stores without queueing renders:
    those artifacts render when first viewed (``renditions_prepare_missing``).
    """
    return _store_plan(
        ingest_plan(events=events, rejected=rejected, raw_messages=raw_messages), render=render
    )


@dataclass(slots=True)
class IngestPlan:
    """A batch made ready to store by ``ingest_plan``: what ``ingest_events`` does before
    it writes (dedupe, buckets, layouts, length checks)."""

    resolved: list[tuple[ObjectEvent, Bucket, ResolvedKey]]
    failures: list[RejectedMessage]  # will be IngestErrors
    superseded: int  # events a newer event of the same key in the batch replaced


def ingest_plan(
    *,
    events: Sequence[ObjectEvent],
    rejected: Sequence[RejectedMessage] = (),
    raw_messages: Mapping[tuple[str, int, int], tuple[bytes | None, bytes | None]] | None = None,
) -> IngestPlan:
    """The first half of ``ingest_events`` (same arguments), which writes nothing and
    needs no transaction; ``ingest_planned`` stores its result. The consumer plans
    batch N+1 while batch N is being stored (streaming/ingest/kafka_loop.py): on a
    loaded machine this half was a third of the storing thread's time."""
    raw_messages = raw_messages or {}
    failures = list(rejected)
    stored_events = [e for e in events if e.action in (EventAction.CREATED, EventAction.REMOVED)]
    newest = _newest_per_key(stored_events)
    buckets = _bucket_map({e.bucket for e in newest})

    resolved: list[tuple[ObjectEvent, Bucket, ResolvedKey]] = []
    for event in newest:
        bucket = buckets.get(event.bucket)
        if bucket is None:
            failures.append(
                _reject(event, raw_messages, f"bucket {event.bucket!r} is not registered in Pipelens")
            )
            continue
        try:
            where = resolve_key(event.key, bucket.layouts)
        except (UnresolvableKey, ValueError) as exc:
            failures.append(
                _reject(
                    event,
                    raw_messages,
                    f"key {event.key!r} matches no layout of bucket {bucket.name!r}: {exc}",
                )
            )
            continue
        too_long = _too_long(event, where)
        if too_long:
            failures.append(_reject(event, raw_messages, too_long))
            continue
        resolved.append((event, bucket, where))
    return IngestPlan(resolved=resolved, failures=failures, superseded=len(stored_events) - len(newest))


@transaction.atomic
def ingest_planned(*, plan: IngestPlan, render: bool = True) -> IngestResult:
    """Store a batch planned by ``ingest_plan``: the second half of ``ingest_events``, with
    the same transaction, guarantees, ``render`` and result."""
    return _store_plan(plan, render=render)


def _store_plan(plan: IngestPlan, *, render: bool) -> IngestResult:
    result = IngestResult()
    resolved, failures = plan.resolved, plan.failures
    with connection.cursor() as cursor:
        if resolved:
            _store_resolved(cursor, resolved, result)
            _touch_buckets(cursor, resolved)
    if failures:
        IngestError.objects.bulk_create(
            IngestError(
                topic=f.topic,
                partition=f.partition,
                offset=f.offset,
                message_key=f.key,
                raw=f.raw,
                error=f.error[:5000],
            )
            for f in failures
        )
    result.rejected = len(failures)
    # Superseded inside the batch, plus those the newer-wins guard refused.
    result.stale = plan.superseded + (len(resolved) - result.stored)

    # Renders and pushes follow the commit (runs.services.changes).
    changes_on_commit(run_ids=result.run_seqs, artifact_ids=result.changed_artifact_ids, ingested=render)
    return result


def _store_resolved(cursor, resolved, result: IngestResult) -> None:
    runs: dict[tuple[int, str], dict] = {}
    steps_wanted: list[tuple[tuple[int, str], str, datetime]] = []
    for event, bucket, where in resolved:
        ident = (bucket.id, where.run_key)
        run = runs.get(ident)
        if run is None:
            runs[ident] = {
                "bucket_id": bucket.id,
                "run_key": where.run_key,
                "name": where.run_name,
                "pipeline": where.pipeline,
                "namespace": where.namespace,
                "layout": where.layout,
                "first": event.event_time,
                "last": event.event_time,
            }
        else:
            run["first"] = min(run["first"], event.event_time)
            run["last"] = max(run["last"], event.event_time)
        steps_wanted.append((ident, where.step_name, event.event_time))

    run_ids = _upsert_runs(cursor, runs)
    result.run_seqs = {run_id: seq for run_id, seq in run_ids.values()}

    steps: dict[tuple[int, str], dict] = {}
    for ident, step_name, at in steps_wanted:
        run_id = run_ids[ident][0]
        step = steps.get((run_id, step_name))
        if step is None:
            steps[(run_id, step_name)] = {"run_id": run_id, "name": step_name, "first": at, "last": at}
        else:
            step["first"] = min(step["first"], at)
            step["last"] = max(step["last"], at)
    step_ids = _upsert_steps(cursor, steps)

    rows = []
    for event, bucket, where in resolved:
        run_id = run_ids[(bucket.id, where.run_key)][0]
        removed = event.action == EventAction.REMOVED
        rows.append(
            ArtifactRow(
                run_id,
                step_ids[(run_id, where.step_name)],
                bucket.id,
                event.key,
                where.artifact_name,
                _guess_kind(where.artifact_name, event.content_type),
                event.size,
                event.etag[:100],
                event.content_type[:255],
                event.version_id[:100],
                event.sequencer[:40],
                event.order,
                event.event_time,
                removed,
            )
        )
    changed = _upsert_artifacts(cursor, rows)
    result.stored = len(changed)
    result.changed_artifact_ids = [row[0] for row in changed]
    _adjust_counts(cursor, changed)


# Checked before the batch is written: one over-long value would otherwise make
# PostgreSQL refuse the whole batch, which the consumer then stores event by
# event (issue 8, finding 8). The limits are the models' own.
_LENGTH_LIMITS = (
    ("object key", lambda e, w: e.key, Artifact._meta.get_field("key").max_length),
    ("artifact name", lambda e, w: w.artifact_name, Artifact._meta.get_field("name").max_length),
    ("run key", lambda e, w: w.run_key, Run._meta.get_field("run_key").max_length),
    ("run name", lambda e, w: w.run_name, Run._meta.get_field("name").max_length),
    ("pipeline name", lambda e, w: w.pipeline, Run._meta.get_field("pipeline").max_length),
    ("namespace", lambda e, w: w.namespace, Run._meta.get_field("namespace").max_length),
    ("step name", lambda e, w: w.step_name, Step._meta.get_field("name").max_length),
)


_LIMITS = {what: limit for what, _, limit in _LENGTH_LIMITS}


def _too_long(event: ObjectEvent, where: ResolvedKey) -> str | None:
    # Nearly every event fits: seven plain comparisons for those, the table for the rest.
    if (
        len(event.key) <= _LIMITS["object key"]
        and len(where.artifact_name) <= _LIMITS["artifact name"]
        and len(where.run_key) <= _LIMITS["run key"]
        and len(where.run_name) <= _LIMITS["run name"]
        and len(where.pipeline) <= _LIMITS["pipeline name"]
        and len(where.namespace) <= _LIMITS["namespace"]
        and len(where.step_name) <= _LIMITS["step name"]
    ):
        return None
    for what, value_of, limit in _LENGTH_LIMITS:
        value = value_of(event, where)
        if len(value) > limit:
            return (
                f"the {what} derived from key {event.key[:200]!r} is {len(value)} characters, "
                f"over the {limit} Pipelens stores"
            )
    return None


def _touch_buckets(cursor, resolved) -> None:
    latest: dict[int, datetime] = {}
    for event, bucket, _ in resolved:
        if bucket.id not in latest or event.event_time > latest[bucket.id]:
            latest[bucket.id] = event.event_time
    for bucket_id, at in sorted(latest.items()):
        cursor.execute(
            "UPDATE runs_bucket SET last_event_at = %s WHERE id = %s "
            "AND (last_event_at IS NULL OR last_event_at < %s)",
            [at, bucket_id, at],
        )


def _reject(event: ObjectEvent, raw_messages: Mapping, reason: str) -> RejectedMessage:
    key, raw = raw_messages.get(
        (event.topic, event.partition, event.offset), (f"{event.bucket}/{event.key}".encode(), None)
    )
    return RejectedMessage(
        topic=event.topic, partition=event.partition, offset=event.offset, key=key, raw=raw, error=reason
    )


def ingest_errors_prune(*, now: datetime | None = None) -> int:
    """Delete IngestErrors older than INGEST_ERROR_RETENTION_DAYS; returns how many.

    Each row keeps a raw message of up to 1 MiB, and a misconfigured store can
    produce thousands an hour. The consume loop calls this now and then;
    ``manage.py prune_ingest_errors`` does it on demand.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.INGEST_ERROR_RETENTION_DAYS)
    removed, _ = IngestError.objects.filter(created_at__lt=cutoff).delete()
    return removed
