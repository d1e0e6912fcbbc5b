"""The renditions service on the real database: idempotent per (artifact, etag),
deleted artifacts skipped, every change bumps the run's seq, work queued on commit."""

import redis

from runs.events import EventAction
from runs.models import Artifact, Rendition, Run
from runs.services.ingest import ingest_events
from runs.services.renditions import rendition_fail, rendition_render, renditions_prepare
from tests.factories import BucketFactory, object_event
from tests.runs.portal_helpers import ingest, run_of


def test_prepare_creates_pending_once_skips_deleted_and_queues_on_commit(
    db, django_capture_on_commit_callbacks, settings, unique_name
):
    bucket = BucketFactory()
    ingest(bucket, "r/s/a.csv", "r/s/b.png", "r/s/gone.txt")
    ingest_events(events=[object_event(bucket.name, "r/s/gone.txt", action=EventAction.REMOVED, seconds=9)])
    run = run_of(bucket, "r")
    ids = list(Artifact.objects.filter(bucket=bucket).values_list("pk", flat=True))
    seq = run.seq
    settings.RENDER_QUEUE = queue = unique_name("render-test")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    with django_capture_on_commit_callbacks() as callbacks:
        jobs = renditions_prepare(artifact_ids=ids)
        assert broker.llen(queue) == 0  # nothing is queued before the commit
    assert sorted(Artifact.objects.get(pk=a).name for a, _ in jobs) == ["a.csv", "b.png"]
    assert {(r.artifact.name, r.status, r.viewer) for r in Rendition.objects.select_related("artifact")} == {
        ("a.csv", "pending", "table"),
        ("b.png", "pending", "image"),
    }
    assert Run.objects.get(pk=run.pk).seq == seq + 1  # one bump for the batch
    for callback in callbacks:  # "commit"
        callback()
    try:
        assert broker.llen(queue) == 2  # one render task per new version, on the broker
    finally:
        broker.delete(queue, f"_kombu.binding.{queue}")
    with django_capture_on_commit_callbacks() as callbacks:
        assert renditions_prepare(artifact_ids=ids) == []
    assert callbacks == []


def test_render_of_a_stale_version_is_a_no_op(db):
    bucket = BucketFactory()
    ingest(bucket, "r/s/a.md")
    artifact = Artifact.objects.get(bucket=bucket)
    assert rendition_render(artifact_id=artifact.pk, etag="an-older-etag") == "skipped"
    assert rendition_render(artifact_id=987654321, etag="x") == "skipped"
    assert not Rendition.objects.exists()


def test_a_version_that_keeps_killing_the_worker_is_failed_with_a_reason(db, settings):
    bucket = BucketFactory()
    ingest(bucket, "r/s/a.md")
    artifact = Artifact.objects.get(bucket=bucket)
    Rendition.objects.create(
        artifact=artifact,
        etag=artifact.etag,
        viewer="markdown",
        status="rendering",
        attempts=settings.RENDER_MAX_ATTEMPTS,
    )
    seq = Run.objects.get(pk=artifact.run_id).seq
    assert rendition_render(artifact_id=artifact.pk, etag=artifact.etag) == "skipped"
    r = Rendition.objects.get()
    assert r.status == "failed" and r.error.startswith(
        f"Gave up after {settings.RENDER_MAX_ATTEMPTS} attempts"
    )
    assert Run.objects.get(pk=artifact.run_id).seq == seq + 1


def test_fail_only_touches_unfinished_renditions(db):
    bucket = BucketFactory()
    ingest(bucket, "r/s/a.md", "r/s/b.md")
    a, b = Artifact.objects.filter(bucket=bucket).order_by("key")
    Rendition.objects.create(artifact=a, etag=a.etag, viewer="markdown", status="pending")
    Rendition.objects.create(
        artifact=b, etag=b.etag, viewer="markdown", status="ready", payload={"html": "x"}
    )
    rendition_fail(artifact_id=a.pk, etag=a.etag, reason="Object storage kept failing")
    rendition_fail(artifact_id=b.pk, etag=b.etag, reason="Object storage kept failing")
    assert dict(Rendition.objects.values_list("artifact__key", "status")) == {
        "r/s/a.md": "failed",
        "r/s/b.md": "ready",
    }
