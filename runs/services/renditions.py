"""Renditions: the only code that writes Rendition rows (docs/viewers.md).

Every status change bumps the artifact's run ``seq`` (``runs_touch``) and
announces the artifact after commit (``changes_on_commit``; the live side
pushes it), in the same transaction as the change.
Render work itself runs outside any transaction: a claim transaction marks
the renditions ``rendering``, the renderer reads MinIO, a store transaction
writes the outcome — but only if the artifact still has the etag that was
rendered (a newer version has its own task).

Every way a render can go wrong ends as a failed rendition with a reason
(docs/security.md): a refused input, a renderer bug, running out of
the worker's memory, running out of time, and outputs the database refuses
to store — then the failure itself is stored in their place. Only outages
(object storage, the database connection) are retried instead.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import logging
import posixpath
import re
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.db.models import Exists, F, OuterRef

from runs import kinds
from runs.kinds import Viewer
from runs.layouts import UnresolvableKey, resolve_key
from runs.models import Artifact, Bucket, BucketGrant, Rendition
from runs.rendering.base import Context, Output, RenderError, Source, StorageUnavailable, failed
from runs.rendering.registry import render_artifact, viewer_of
from runs.selectors.access import grant_allows
from runs.selectors.references import reference_sources_to_retry, references_effective
from runs.services.changes import Changes, changes_on_commit, runs_touch
from runs.services.references import references_record
from runs.services.run_metrics import LIST_VIEWERS, run_metrics_refresh
from runs.storage import ObjectSource, minio_client, preview_prefix, preview_put
from vizsite import metrics
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.render")

FINAL = (Rendition.Status.READY, Rendition.Status.FAILED)


def _builtin(queryset):
    """Renditions of the built-in viewers: recipe outputs (runs/services/recipes.py) are
    written and replaced by that service only."""
    return queryset.exclude(viewer=Viewer.RECIPE)


# Task names (runs/tasks.py registers them): queued by name, so this service
# does not import the tasks that import it.
RENDER_BATCH_TASK = "runs.render_batch"
RENDER_ARTIFACT_TASK = "runs.render_artifact"
_FANOUT_CHUNK = 500


def _changed(*, artifacts: Iterable[Artifact | dict]) -> None:
    """Bump the runs' seq now and announce the artifacts after commit."""
    rows = list(artifacts)
    get = (lambda a, f: a[f]) if rows and isinstance(rows[0], dict) else getattr
    run_ids = {get(a, "run_id") for a in rows}
    runs_touch(run_ids=run_ids)
    changes_on_commit(run_ids=run_ids, artifact_ids={get(a, "id") for a in rows})


# --- queueing ---------------------------------------------------------------------


def renditions_enqueue(*, artifact_ids: Sequence[int]) -> None:
    """Queue rendering of these artifacts (after commit; one small message per 500 ids).

    The consumer calls this from its on-commit hook, so it publishes one
    message per batch and never waits on per-artifact work; the worker's
    ``render_batch`` task fans out.
    """
    ids = sorted(set(artifact_ids))
    for i in range(0, len(ids), _FANOUT_CHUNK):
        chunk = ids[i : i + _FANOUT_CHUNK]
        # Expires: a batch nobody picked up within the hour (no worker running) is
        # dropped rather than rendered against whatever database a later worker uses.
        transaction.on_commit(
            lambda chunk=chunk: current_app.send_task(
                RENDER_BATCH_TASK, kwargs={"artifact_ids": chunk}, queue=settings.RENDER_QUEUE, expires=3600
            )
        )


def on_changes(changes: Changes) -> None:
    """Change listener (subscribed in runs.apps): render the object versions ingest stored."""
    if changes.ingested and changes.artifact_ids:
        try:
            renditions_enqueue(artifact_ids=changes.artifact_ids)
        except Exception as exc:  # a broker outage must not stop ingestion
            log_event(
                logger,
                "render_enqueue_failed",
                level=logging.WARNING,
                artifacts=len(changes.artifact_ids),
                error=repr(exc)[:200],
            )


@transaction.atomic
def renditions_prepare(*, artifact_ids: Sequence[int], retry_sources: bool = True) -> list[tuple[int, str]]:
    """Create pending renditions for live artifact versions that have none; queue their tasks.

    Idempotent: an (artifact, etag) that already has renditions is skipped.
    Deleted artifacts are not rendered. Returns the (artifact id, etag) queued.

    A file that a KFP metadata file of its run references takes the referenced kind here
    (ingest stored the kind its name gives), and with ``retry_sources`` the metadata files
    that reference it are rendered again: their outputs may have failed for want of it.
    """
    arts = list(
        Artifact.objects.filter(id__in=list(artifact_ids), deleted=False).values(
            "id", "etag", "kind", "run_id", "name", "bucket_id", "key", "content_type"
        )
    )
    _apply_references(arts, retry_sources=retry_sources)
    have = set(
        _builtin(Rendition.objects)
        .filter(artifact_id__in=[a["id"] for a in arts])
        .values_list("artifact_id", "etag")
    )
    new = [a for a in arts if (a["id"], a["etag"]) not in have]
    if not new:
        return []
    Rendition.objects.bulk_create(
        [
            Rendition(
                artifact_id=a["id"],
                etag=a["etag"],
                position=0,
                viewer=viewer_of(a["kind"]),
                title=posixpath.basename(a["name"])[:500],
            )
            for a in new
        ],
        ignore_conflicts=True,
    )
    _changed(artifacts=new)
    jobs = [(a["id"], a["etag"]) for a in new]
    transaction.on_commit(
        lambda: [
            current_app.send_task(RENDER_ARTIFACT_TASK, args=job, queue=settings.RENDER_QUEUE) for job in jobs
        ]
    )
    return jobs


def renditions_prepare_missing(*, run_id: int, limit: int = 5000) -> int:
    """Render on first view: queue the live artifacts of a run whose current version has
    no rendition yet. Backfills and full sweeps store artifacts without rendering them
    (``ingest_events(render=False)``), so a million imported objects never compete
    with live renders; opening the run renders what it shows. Cheap when nothing is
    missing (one indexed anti-join); returns how many were queued."""
    missing = list(
        Artifact.objects.filter(run_id=run_id, deleted=False)
        .exclude(Exists(Rendition.objects.filter(artifact_id=OuterRef("pk"), etag=OuterRef("etag"))))
        .values_list("id", flat=True)[:limit]
    )
    if missing:
        renditions_enqueue(artifact_ids=missing)
    return len(missing)


def _apply_references(arts: list[dict], *, retry_sources: bool) -> None:
    """Give each artifact (a ``values()`` row, updated in place) the kind a reference decides."""
    pairs = [(a["bucket_id"], a["key"]) for a in arts]
    effective = references_effective(pairs=pairs)
    for a in arts:
        ref = effective.get((a["bucket_id"], a["key"]))
        if ref is not None and ref.kind != a["kind"] and kinds.restylable(a["name"], a["content_type"]):
            Artifact.objects.filter(pk=a["id"]).update(kind=ref.kind)
            a["kind"] = ref.kind
    if retry_sources:
        own = {a["id"] for a in arts}
        sources = [i for i in reference_sources_to_retry(pairs=pairs) if i not in own]
        failed_sources = set(
            _builtin(Rendition.objects)
            .filter(artifact_id__in=sources, etag=F("artifact__etag"), status=Rendition.Status.FAILED)
            .values_list("artifact_id", flat=True)
        )
        if failed_sources:
            renditions_rerender(artifact_ids=sorted(failed_sources), retry_sources=False)


@transaction.atomic
def renditions_rerender(*, artifact_ids: Sequence[int], retry_sources: bool = False) -> list[tuple[int, str]]:
    """Render the current versions of these artifacts again (their kind or references changed):
    their built-in renditions are dropped and new ones queued. A render of the old kind still
    running finds the kind changed and stores nothing (``_store``)."""
    ids = sorted(set(artifact_ids))
    metric_runs = set(
        Rendition.objects.filter(artifact_id__in=ids, viewer__in=LIST_VIEWERS).values_list(
            "artifact__run_id", flat=True
        )
    )
    _builtin(Rendition.objects.filter(artifact_id__in=ids, etag=F("artifact__etag"))).delete()
    if metric_runs:
        run_metrics_refresh(run_ids=metric_runs)
    return renditions_prepare(artifact_ids=ids, retry_sources=retry_sources)


# --- rendering --------------------------------------------------------------------


@transaction.atomic
def _claim(*, artifact_id: int, etag: str) -> tuple[Artifact | None, int]:
    """Lock the artifact's version for rendering; (None, n) when there is nothing to do."""
    artifact = (
        Artifact.objects.select_for_update(of=("self",))
        .select_related("bucket", "run")
        .filter(pk=artifact_id)
        .first()
    )
    if artifact is None or artifact.deleted or artifact.etag != etag:
        return None, 0
    rows = list(_builtin(Rendition.objects.select_for_update()).filter(artifact=artifact, etag=etag))
    if rows and all(r.status in FINAL for r in rows):
        return None, 0  # already rendered: a redelivered message is a no-op
    attempts = max((r.attempts for r in rows), default=0) + 1
    if not rows:
        rows = [
            Rendition.objects.create(
                artifact=artifact,
                etag=etag,
                position=0,
                viewer=viewer_of(artifact.kind),
                title=posixpath.basename(artifact.name)[:500],
            )
        ]
    if attempts > settings.RENDER_MAX_ATTEMPTS:
        Rendition.objects.filter(pk__in=[r.pk for r in rows]).update(
            status=Rendition.Status.FAILED,
            attempts=attempts,
            error=f"Gave up after {attempts - 1} attempts: rendering never finished "
            f"(the worker was stopped or ran out of memory each time).",
        )
        _changed(artifacts=[artifact])
        return None, attempts
    Rendition.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=Rendition.Status.RENDERING, attempts=attempts
    )
    _changed(artifacts=[artifact])
    return artifact, attempts


def _clean(value):
    """``value`` with U+0000 replaced (PostgreSQL's text and jsonb cannot hold it)."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _storable(output: Output) -> Output:
    """``output`` as the database will take it: NUL characters replaced; a payload that is not
    strict JSON (NaN, infinities, objects JSON cannot hold) becomes a failure with that reason."""
    payload = _clean(output.payload)
    title, error = _clean(output.title or ""), _clean(output.error or "")
    try:
        json.dumps(payload, allow_nan=False)
    except ValueError:
        return failed(
            output.viewer,
            title,
            "The preview holds a number that is not finite (NaN or infinity), which cannot be stored.",
        )
    except TypeError as exc:
        return failed(output.viewer, title, f"The preview could not be stored ({exc}); see the worker log.")
    return Output(
        viewer=output.viewer, title=title, payload=payload, preview_key=output.preview_key, error=error
    )


@transaction.atomic
def _store(
    *, artifact_id: int, etag: str, outputs: list[Output], final: bool, attempts: int, kind: str | None = None
) -> bool:
    """Replace the version's renditions with ``outputs``; False if the artifact moved on (a new
    version, or a new kind given by a reference since ``kind`` was rendered)."""
    outputs = [_storable(o) for o in outputs]
    artifact = Artifact.objects.select_for_update().filter(pk=artifact_id).first()
    if artifact is None or artifact.deleted or artifact.etag != etag:
        return False
    if kind is not None and artifact.kind != kind:
        return False
    # The runs list's metric values and progress follow these renditions (runs/services/run_metrics.py).
    list_touched = any(o.viewer in LIST_VIEWERS for o in outputs) or (
        Rendition.objects.filter(artifact_id=artifact_id, viewer__in=LIST_VIEWERS).exists()
    )
    _builtin(Rendition.objects.filter(artifact_id=artifact_id, etag=etag)).delete()
    if final:  # older versions' renditions are superseded
        Rendition.objects.filter(artifact_id=artifact_id).exclude(etag=etag).delete()
    done = Rendition.Status.READY if final else Rendition.Status.RENDERING
    Rendition.objects.bulk_create(
        [
            Rendition(
                artifact_id=artifact_id,
                etag=etag,
                position=i,
                viewer=o.viewer[:30],
                title=(o.title or "")[:500],
                payload=o.payload,
                preview_key=o.preview_key,
                error=o.error[:5000],
                attempts=attempts,
                status=Rendition.Status.FAILED if o.failed else done,
            )
            for i, o in enumerate(outputs)
        ]
    )
    _changed(artifacts=[artifact])
    if list_touched:
        run_metrics_refresh(run_ids=[artifact.run_id])
    return True


def rendition_render(*, artifact_id: int, etag: str) -> str:
    """Render one artifact version; returns "skipped", "ready", "failed" or "stale".

    Raises ``StorageUnavailable`` (after putting the renditions back to
    pending) so the task can retry with back-off. Every other failure ends
    as a failed rendition with a reason; the worker carries on.
    """
    artifact, attempts = _claim(artifact_id=artifact_id, etag=etag)
    if artifact is None:
        return "skipped"
    bucket = artifact.bucket
    source = ObjectSource(
        bucket.name,
        artifact.key,
        name=artifact.name,
        size=artifact.size,
        etag=artifact.etag,
        content_type=artifact.content_type,
        store=bucket.store,
    )
    fetched: list[ObjectSource] = []
    referred: list[tuple[int, str, dict]] = []
    fetched_by_uri: dict[str, list[str]] = {}
    ctx = _context(
        artifact=artifact,
        attempts=attempts,
        fetched=fetched,
        referred=referred,
        fetched_by_uri=fetched_by_uri,
    )
    reference = references_effective(pairs=[(artifact.bucket_id, artifact.key)]).get(
        (artifact.bucket_id, artifact.key)
    )
    options = (
        reference.options
        if reference is not None
        and reference.kind == artifact.kind
        and kinds.restylable(artifact.name, artifact.content_type)
        else None
    )
    started = time.monotonic()
    try:
        if artifact.kind == kinds.OTHER and options is None:
            artifact.kind = _refine_stored_kind(artifact=artifact, source=source)
        outputs = render_artifact(source, artifact.kind, ctx, reference=options)
    except StorageUnavailable:
        _requeue(artifact_id=artifact_id, etag=etag)
        raise
    except SoftTimeLimitExceeded:
        outputs = [
            failed(
                viewer_of(artifact.kind),
                artifact.name,
                f"Rendering took longer than {settings.RENDER_SOFT_TIME_LIMIT_S} s and was stopped.",
            )
        ]
    except RenderError as exc:
        outputs = [failed(viewer_of(artifact.kind), artifact.name, str(exc))]
    except MemoryError:
        outputs = [failed(viewer_of(artifact.kind), artifact.name, _out_of_memory_reason())]
        log_event(
            logger,
            "render_out_of_memory",
            level=logging.WARNING,
            artifact=artifact_id,
            limit_mb=settings.RENDER_WORKER_MAX_MEMORY_MB,
        )
    except RecursionError:
        outputs = [failed(viewer_of(artifact.kind), artifact.name, "The file is nested too deeply to read.")]
    except (OperationalError, InterfaceError):
        raise  # the database connection, not the file: the task retries
    except Exception as exc:  # a renderer bug must not stop the worker or hide the artifact
        logger.exception("render_crashed artifact=%s", artifact_id)
        outputs = [
            failed(
                viewer_of(artifact.kind),
                artifact.name,
                f"Internal error while rendering ({type(exc).__name__}); see the worker log.",
            )
        ]
    if not outputs:
        outputs = [failed(viewer_of(artifact.kind), artifact.name, "The renderer produced nothing.")]
    foreign = cross_run_sources(artifact=artifact, sources=fetched)
    if foreign:  # every rendition of this version may carry their data: each is checked per reader
        for output in outputs:
            output.payload = {**output.payload, "cross_run_sources": foreign}
    outputs, stored = _store_or_fail(artifact=artifact, etag=etag, outputs=outputs, attempts=attempts)
    if stored and (referred or artifact.references.exists()):
        _record_references(artifact=artifact, etag=etag, referred=referred, fetched_by_uri=fetched_by_uri)
    status = "stale" if not stored else ("failed" if all(o.failed for o in outputs) else "ready")
    metrics.record_render(
        viewer=viewer_of(artifact.kind),
        duration_s=time.monotonic() - started,
        failures=Counter(o.viewer for o in outputs if o.failed) if stored else Counter(),
    )
    log_event(
        logger,
        "rendered",
        artifact=artifact_id,
        status=status,
        outputs=len(outputs),
        failed=sum(o.failed for o in outputs),
        attempts=attempts,
    )
    return status


def _refine_stored_kind(*, artifact: Artifact, source: ObjectSource) -> str:
    """The kind of a file whose name said nothing, from its first bytes, stored on the artifact
    so that lists say it too (a KFP v2 ``Dataset`` without extension is Parquet, ``PAR1``)."""
    kind = kinds.refine_kind(artifact.name, source.read(512), artifact.content_type)
    if kind != kinds.OTHER:
        with transaction.atomic():
            if Artifact.objects.filter(pk=artifact.pk, etag=artifact.etag, kind=kinds.OTHER).update(
                kind=kind
            ):
                _changed(artifacts=[artifact])
    return kind


def _record_references(
    *,
    artifact: Artifact,
    etag: str,
    referred: list[tuple[int, str, dict]],
    fetched_by_uri: dict[str, list[str]],
) -> None:
    """Record what the metadata file references and render again the files whose references
    changed. A failure here is logged: the metadata file's own renditions are stored."""
    try:
        with transaction.atomic():
            targets = references_record(
                artifact_id=artifact.id, etag=etag, referred=referred, fetched=fetched_by_uri
            )
            if targets:
                renditions_rerender(artifact_ids=targets, retry_sources=False)
    except (OperationalError, InterfaceError):
        raise
    except DatabaseError:
        logger.exception("references_refused artifact=%s", artifact.id)


def _out_of_memory_reason() -> str:
    limit = settings.RENDER_WORKER_MAX_MEMORY_MB
    if limit > 0:
        return (
            f"Rendering needed more memory than a render worker may use ({limit} MiB, "
            f"RENDER_WORKER_MAX_MEMORY_MB) and was stopped."
        )
    return "Rendering ran out of memory and was stopped."


def _store_or_fail(
    *, artifact: Artifact, etag: str, outputs: list[Output], attempts: int
) -> tuple[list[Output], bool]:
    """Store the final ``outputs``; if the database refuses them, store a failure saying so instead.

    A refusal (bad data, a constraint, a trigger) must not leave the version
    ``rendering`` for ever. Connection errors propagate: nothing can be stored
    then, and the task retries.
    """
    outputs = [_storable(o) for o in outputs]
    try:
        return outputs, _store(
            artifact_id=artifact.id,
            etag=etag,
            outputs=outputs,
            final=True,
            attempts=attempts,
            kind=artifact.kind,
        )
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("render_store_refused artifact=%s", artifact.id)
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        reason = f"The preview could not be stored: the database refused it ({detail})."
    outputs = [failed(viewer_of(artifact.kind), artifact.name, reason)]
    try:
        return outputs, _store(
            artifact_id=artifact.id,
            etag=etag,
            outputs=outputs,
            final=True,
            attempts=attempts,
            kind=artifact.kind,
        )
    except DatabaseError:
        logger.exception("render_store_failure_refused artifact=%s", artifact.id)
    rendition_fail(artifact_id=artifact.id, etag=etag, reason=reason)
    return outputs, True


@transaction.atomic
def _requeue(*, artifact_id: int, etag: str) -> None:
    rows = _builtin(Rendition.objects.filter(artifact_id=artifact_id, etag=etag)).exclude(status__in=FINAL)
    if rows.update(status=Rendition.Status.PENDING):
        artifact = Artifact.objects.filter(pk=artifact_id).values("id", "run_id").first()
        if artifact:
            _changed(artifacts=[artifact])


@transaction.atomic
def rendition_fail(*, artifact_id: int, etag: str, reason: str) -> None:
    """Mark an artifact version's unfinished renditions failed with ``reason`` (retries exhausted)."""
    rows = _builtin(Rendition.objects.filter(artifact_id=artifact_id, etag=etag)).exclude(status__in=FINAL)
    if rows.update(status=Rendition.Status.FAILED, error=reason[:5000]):
        artifact = Artifact.objects.filter(pk=artifact_id).values("id", "run_id").first()
        if artifact:
            _changed(artifacts=[artifact])


# --- what renderers may do besides reading ------------------------------------------


def _context(
    *,
    artifact: Artifact,
    attempts: int,
    fetched: list[ObjectSource],
    referred: list[tuple[int, str, dict]] | None = None,
    fetched_by_uri: dict[str, list[str]] | None = None,
) -> Context:
    """What renderers may do besides reading; sources they fetch are appended to ``fetched``
    (and their keys to ``fetched_by_uri``), references they report to ``referred``."""
    counter = itertools.count()
    etag = re.sub(r"[^A-Za-z0-9_.-]", "_", artifact.etag) or "none"
    base = f"{preview_prefix()}/{artifact.id}/{etag}"

    def key_for(name: str) -> str:
        return f"{base}/{next(counter)}-{posixpath.basename(name) or 'file'}"

    def store(name: str, data: bytes, content_type: str) -> str:
        return preview_put(key_for(name), data, content_type)["key"]

    def store_source(source: Source) -> dict:
        data = source.read_all(settings.ARCHIVE_MAX_MEMBER_BYTES, "The file")
        return preview_put(
            key_for("src-" + posixpath.basename(source.name)), data, "application/octet-stream"
        )

    def publish(outputs: list[Output]) -> None:
        _store(
            artifact_id=artifact.id,
            etag=artifact.etag,
            outputs=outputs,
            final=False,
            attempts=attempts,
            kind=artifact.kind,
        )

    def fetch(uri: str) -> list[Source]:
        found = fetch_sources(artifact=artifact, uri=uri)
        fetched.extend(found)
        if fetched_by_uri is not None:
            fetched_by_uri.setdefault(uri.strip(), []).extend(s.key for s in found)
        return found

    def refer(position: int, uri: str, options: dict) -> None:
        if referred is not None:
            referred.append((position, uri, options))

    return Context(store=store, fetch=fetch, publish=publish, store_source=store_source, refer=refer)


_URI = re.compile(r"^(minio|s3)://([^/]+)/(.+)$")


def fetch_sources(*, artifact: Artifact, uri: str) -> list[ObjectSource]:
    """The objects a KFP metadata ``source`` URI names, if whoever sees ``artifact`` may see them.

    Only ``minio://`` and ``s3://`` in registered buckets are read. An object
    is allowed when every grant that shows the artifact's run also shows the
    object's run (so a rendition never reveals more than its own run's
    viewers could open). Wildcards (``*?[``) concatenate matches in key order.

    Visibility is decided before anything is read or counted, and a source
    that is missing, unregistered or not visible gets the same answer: a
    pipeline author probing another bucket learns nothing about its objects
    (issue 8, finding 3).
    """
    match = _URI.match(uri.strip())
    if not match:
        scheme = uri.split("://", 1)[0] if "://" in uri else "a path"
        raise RenderError(
            f"Sources on {scheme} are not read by Pipelens; only minio:// and s3:// objects "
            f"in the run's buckets are ({uri[:200]})."
        )
    bucket_name, pattern = match.group(2), match.group(3)
    unavailable = RenderError(
        f"The source {uri[:300]!r} is not available to this run's viewers: it does "
        f"not exist, or it belongs to a run that some of them may not see."
    )
    bucket = Bucket.objects.filter(name=bucket_name).first()
    if bucket is None:
        raise unavailable
    client = minio_client(bucket.store)
    wildcard = re.search(r"[*?\[]", pattern)
    try:
        if wildcard:
            keys = []
            listed = client.list_objects(bucket_name, prefix=pattern[: wildcard.start()], recursive=True)
            for obj in itertools.islice(listed, settings.KFP_SOURCE_MAX_LISTED):
                name = obj.object_name
                if fnmatch.fnmatchcase(name, pattern) and _source_visible(
                    artifact=artifact, bucket=bucket, key=name
                ):
                    keys.append(name)
                    if len(keys) > settings.KFP_SOURCE_MAX_OBJECTS:
                        raise RenderError(
                            f"The source {uri[:300]!r} matches more than "
                            f"{settings.KFP_SOURCE_MAX_OBJECTS} objects."
                        )
            keys.sort()
        else:
            keys = [pattern] if _source_visible(artifact=artifact, bucket=bucket, key=pattern) else []
        if not keys:
            raise unavailable
        sources = []
        for key in keys:
            stat = client.stat_object(bucket_name, key)
            sources.append(
                ObjectSource(
                    bucket_name,
                    key,
                    name=posixpath.basename(key),
                    size=stat.size,
                    etag=(stat.etag or "").strip('"'),
                    store=bucket.store,
                )
            )
    except RenderError:
        raise
    except Exception as exc:
        if getattr(exc, "code", "") in ("NoSuchKey", "NoSuchBucket"):
            raise unavailable from exc
        raise StorageUnavailable(f"cannot read the source {uri[:300]!r}: {exc}") from exc
    return sources


def _source_visible(*, artifact: Artifact, bucket: Bucket, key: str) -> bool:
    """Whether every group that sees ``artifact``'s run also sees the run of ``key``."""
    run = artifact.run
    try:
        where = resolve_key(key, bucket.layouts)
    except (UnresolvableKey, ValueError):
        return False  # outside any run Pipelens knows: nobody was granted it
    if bucket.id == artifact.bucket_id and where.run_key == run.run_key:
        return True  # the run's own objects

    def shows(grant, bucket_id, run_key, namespace):
        return grant_allows(
            bucket_id=grant.bucket_id,
            prefix=grant.key_prefix,
            namespace=grant.namespace,
            run_bucket_id=bucket_id,
            run_key=run_key,
            run_namespace=namespace,
        )

    grants = list(BucketGrant.objects.filter(bucket_id__in={artifact.bucket_id, bucket.id}))
    return all(
        any(
            g.group_id == grant.group_id and shows(g, bucket.id, where.run_key, where.namespace)
            for g in grants
        )
        for grant in grants
        if shows(grant, artifact.bucket_id, run.run_key, run.namespace)
    )


def cross_run_sources(*, artifact: Artifact, sources: Iterable[ObjectSource]) -> list[list[str]]:
    """[bucket, key] of the fetched sources outside ``artifact``'s own run: checked again for
    each reader when the rendition is shown (runs.selectors.viewers)."""
    out = []
    for source in sources:
        if source.bucket == artifact.bucket.name:
            try:
                if resolve_key(source.key, artifact.bucket.layouts).run_key == artifact.run.run_key:
                    continue
            except (UnresolvableKey, ValueError):
                pass
        out.append([source.bucket, source.key])
    return sorted(map(list, {tuple(x) for x in out}))
