"""runs.services.ingest.ingest_events against the real PostgreSQL."""

import pytest

from runs.events import EventAction
from runs.models import Artifact, IngestError, Run, Step
from runs.services.ingest import RejectedMessage, ingest_events
from tests.factories import BucketFactory, object_event

pytestmark = pytest.mark.django_db

V1 = "artifacts/iris-pipeline-7xk2p/2026/11/29/iris-pipeline-7xk2p-3301820553/{}.tgz"
V2 = "v2/artifacts/iris/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10/train-model/{}"


def test_batch_creates_runs_steps_and_artifacts_with_counts():
    bucket = BucketFactory(name="mlpipeline")
    events = [
        object_event("mlpipeline", V1.format("mlpipeline-ui-metadata"), seconds=1),
        object_event("mlpipeline", V1.format("mlpipeline-metrics"), seconds=2),
        object_event("mlpipeline", V2.format("model.pkl"), seconds=3),
    ]
    result = ingest_events(events=events)

    assert result.stored == 3 and result.rejected == 0
    v1 = Run.objects.get(bucket=bucket, run_key="artifacts/iris-pipeline-7xk2p")
    assert (v1.name, v1.pipeline, v1.layout, v1.artifact_count, v1.seq) == (
        "iris-pipeline-7xk2p",
        "iris-pipeline",
        "kfp_v1_dated",
        2,
        1,
    )
    assert v1.first_event_at == events[0].event_time and v1.last_event_at == events[1].event_time
    step = Step.objects.get(run=v1)
    assert (step.name, step.artifact_count) == ("iris-pipeline-7xk2p-3301820553", 2)
    kinds = dict(Artifact.objects.filter(run=v1).values_list("name", "kind"))
    assert kinds == {"mlpipeline-ui-metadata.tgz": "kfp_ui_metadata", "mlpipeline-metrics.tgz": "metrics"}
    v2 = Run.objects.get(run_key="v2/artifacts/iris/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10")
    assert v2.steps.get().name == "train-model"
    bucket.refresh_from_db()
    assert bucket.last_event_at == events[2].event_time


def test_newest_event_of_a_key_wins_inside_a_batch_whatever_the_order():
    BucketFactory(name="b")
    key = "run/step/out.csv"
    newer = object_event("b", key, seconds=10, etag="new")
    older = object_event("b", key, seconds=5, etag="old")
    result = ingest_events(events=[newer, older])
    assert result.stored == 1 and result.stale == 1
    assert Artifact.objects.get(key=key).etag == "new"


def test_older_event_arriving_late_changes_nothing():
    BucketFactory(name="b")
    key = "run/step/out.csv"
    ingest_events(events=[object_event("b", key, seconds=10, etag="new", size=2)])
    before = Artifact.objects.get(key=key)
    result = ingest_events(events=[object_event("b", key, seconds=5, etag="old", size=1)])
    after = Artifact.objects.get(key=key)
    assert result.stored == 0 and result.stale == 1
    assert (after.etag, after.size, after.updated_at) == ("new", 2, before.updated_at)


def test_replaying_a_batch_is_idempotent():
    BucketFactory(name="b")
    events = [object_event("b", f"run/step/{i}.txt", seconds=i) for i in range(5)]
    ingest_events(events=events)
    result = ingest_events(events=events)
    assert result.stored == 0
    assert Artifact.objects.count() == 5 and Run.objects.get().artifact_count == 5


def test_removal_marks_deleted_keeps_metadata_and_recounts():
    BucketFactory(name="b")
    ingest_events(
        events=[
            object_event("b", "run/step/a.txt", seconds=1, etag="e1"),
            object_event("b", "run/step/b.txt", seconds=1),
        ]
    )
    ingest_events(events=[object_event("b", "run/step/a.txt", action=EventAction.REMOVED, seconds=2)])
    gone = Artifact.objects.get(key="run/step/a.txt")
    assert gone.deleted and gone.etag == "e1"
    assert Run.objects.get().artifact_count == 1 and Step.objects.get().artifact_count == 1


def test_removal_seen_before_creation_is_not_undone_by_an_older_create():
    BucketFactory(name="b")
    key = "run/step/a.txt"
    ingest_events(events=[object_event("b", key, action=EventAction.REMOVED, seconds=5)])
    ingest_events(events=[object_event("b", key, seconds=1)])
    assert Artifact.objects.get(key=key).deleted
    ingest_events(events=[object_event("b", key, seconds=9, etag="again")])
    artifact = Artifact.objects.get(key=key)
    assert not artifact.deleted and artifact.etag == "again"


def test_each_batch_bumps_the_seq_of_the_runs_it_touches():
    BucketFactory(name="b")
    first = ingest_events(events=[object_event("b", "r1/s/a", seconds=1), object_event("b", "r2/s/a")])
    second = ingest_events(events=[object_event("b", "r1/s/b", seconds=2)])
    r1 = Run.objects.get(run_key="r1")
    assert first.run_seqs[r1.id] == 1 and second.run_seqs == {r1.id: 2}
    assert Run.objects.get(run_key="r2").seq == 1


def test_unknown_bucket_and_unresolvable_key_become_ingest_errors_with_raw_bytes():
    BucketFactory(name="b")
    unknown = object_event("nope", "run/step/a", offset=7)
    flat = object_event("b", "just-a-file.txt", offset=8)
    raw = {
        ("minio-events", 0, 7): (b"nope/run/step/a", b"{raw 7}"),
        ("minio-events", 0, 8): (b"b/just-a-file.txt", b"{raw 8}"),
    }
    result = ingest_events(events=[unknown, flat], raw_messages=raw)
    assert result.rejected == 2 and Artifact.objects.count() == 0
    errors = {e.offset: e for e in IngestError.objects.all()}
    assert "bucket 'nope' is not registered" in errors[7].error
    assert bytes(errors[7].raw) == b"{raw 7}" and bytes(errors[7].message_key) == b"nope/run/step/a"
    assert "matches no layout" in errors[8].error and bytes(errors[8].raw) == b"{raw 8}"


def test_rejected_messages_are_stored_in_the_same_transaction():
    result = ingest_events(
        events=[], rejected=[RejectedMessage("minio-events", 3, 42, b"k", b"\xff\xfe", "value is not UTF-8")]
    )
    error = IngestError.objects.get()
    assert result.rejected == 1
    assert (error.topic, error.partition, error.offset, bytes(error.raw), error.error) == (
        "minio-events",
        3,
        42,
        b"\xff\xfe",
        "value is not UTF-8",
    )


def test_accessed_events_are_not_stored():
    BucketFactory(name="b")
    result = ingest_events(events=[object_event("b", "run/step/a", action=EventAction.ACCESSED)])
    assert result.stored == 0 and Artifact.objects.count() == 0 and Run.objects.count() == 0


def test_change_listeners_run_after_commit_with_the_batch(django_capture_on_commit_callbacks, monkeypatch):
    from runs.services import changes

    BucketFactory(name="b")
    seen = []
    monkeypatch.setattr(changes, "_listeners", [seen.append])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest_events(events=[object_event("b", "run/step/a")])
    assert seen == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert len(seen) == 1 and len(seen[0].artifact_ids) == 1 and seen[0].ingested
    assert seen[0].run_ids == {Run.objects.get().pk}


def test_counts_stay_equal_to_a_recount_through_random_creates_overwrites_and_deletes():
    import random

    from django.db.models import Count, Q

    BucketFactory(name="b")
    rng = random.Random(7)
    keys = [f"run-{r}/step-{s}/file-{f}" for r in range(3) for s in range(3) for f in range(4)]
    for batch in range(12):
        events = []
        for n in range(25):
            action = EventAction.REMOVED if rng.random() < 0.3 else EventAction.CREATED
            # Times go backwards now and then: stale events must not move counts either.
            events.append(
                object_event(
                    "b", rng.choice(keys), action=action, seconds=batch * 100 + rng.randint(-150, 50) + n
                )
            )
        ingest_events(events=events)
    for run in Run.objects.annotate(live=Count("artifacts", filter=Q(artifacts__deleted=False))):
        assert run.artifact_count == run.live, run.run_key
    for step in Step.objects.annotate(live=Count("artifacts", filter=Q(artifacts__deleted=False))):
        assert step.artifact_count == step.live, step.name


def test_an_over_long_derived_field_rejects_that_event_only():
    """Checked up front: one bad value must not make PostgreSQL refuse the whole batch
    (the consumer would then store it event by event). Issue 8, finding 8."""
    BucketFactory(name="b")
    long_step = "run/" + "s" * 600 + "/file.txt"
    result = ingest_events(
        events=[object_event("b", "run/step/ok.txt", seconds=1), object_event("b", long_step, seconds=2)]
    )
    assert result.stored == 1 and result.rejected == 1
    assert Artifact.objects.get().key == "run/step/ok.txt"
    error = IngestError.objects.get()
    assert "step name" in error.error and "600 characters, over the 512" in error.error


def test_a_forged_maximum_sequencer_cannot_freeze_a_key():
    """A message claiming sequencer 7FFFFFFFFFFFFFFF is ordered by its event time, so the
    object's next real version still wins (issue 8, finding 8)."""
    import json

    from streaming.ingest.s3_events import parse_message

    BucketFactory(name="b")

    def message(etag, event_time, sequencer):
        return json.dumps(
            {
                "EventName": "s3:ObjectCreated:Put",
                "Key": "b/run/step/a.txt",
                "Records": [
                    {
                        "eventVersion": "2.0",
                        "eventSource": "minio:s3",
                        "eventTime": event_time,
                        "eventName": "s3:ObjectCreated:Put",
                        "s3": {
                            "bucket": {"name": "b"},
                            "object": {
                                "key": "run/step/a.txt",
                                "size": 1,
                                "eTag": etag,
                                "sequencer": sequencer,
                            },
                        },
                    }
                ],
            }
        ).encode()

    ingest_events(events=parse_message(message("forged", "2026-11-29T06:00:00.000Z", "7FFFFFFFFFFFFFFF")))
    later_ns = 1795932000 * 10**9 + 60 * 10**9  # one minute after the forged event
    ingest_events(events=parse_message(message("real", "2026-11-29T06:01:00.000Z", f"{later_ns:X}")))
    assert Artifact.objects.get().etag == "real"


def test_ingest_errors_past_their_retention_are_pruned(settings):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    from runs.services.ingest import ingest_errors_prune

    settings.INGEST_ERROR_RETENTION_DAYS = 7
    old = IngestError.objects.create(topic="t", partition=0, offset=1, raw=b"x" * 1000, error="old")
    IngestError.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    IngestError.objects.create(topic="t", partition=0, offset=2, raw=b"y", error="recent")
    assert ingest_errors_prune() == 1
    assert list(IngestError.objects.values_list("error", flat=True)) == ["recent"]
    IngestError.objects.update(created_at=timezone.now() - timedelta(days=30))
    call_command("prune_ingest_errors")
    assert not IngestError.objects.exists()


def test_a_batch_planned_first_then_stored_is_stored_as_ingest_events_stores_it():
    """The consumer plans a batch on one thread and stores it on another
    (ingest_plan, then ingest_planned): same rows, same result, same errors."""
    from runs.services.ingest import ingest_plan, ingest_planned

    BucketFactory(name="b")
    events = [
        object_event("b", "run/step/a.csv", seconds=1),
        object_event("b", "run/step/a.csv", seconds=3, etag="newer"),  # supersedes the first
        object_event("b", "run/step/gone.txt", seconds=2, action=EventAction.REMOVED),
        object_event("b", "just-a-file.txt", seconds=2, offset=9),  # no layout
        object_event("nope", "run/step/a", offset=10),  # unknown bucket
    ]
    plan = ingest_plan(events=events)
    assert Artifact.objects.count() == 0  # planning writes nothing
    result = ingest_planned(plan=plan)
    assert (result.stored, result.stale, result.rejected) == (2, 1, 2)
    assert Artifact.objects.get(key="run/step/a.csv").etag == "newer"
    assert Artifact.objects.get(key="run/step/gone.txt").deleted
    assert sorted(IngestError.objects.values_list("offset", flat=True)) == [9, 10]
    # Replayed through ingest_events: nothing new, the same accounting.
    again = ingest_events(events=events)
    assert (again.stored, again.stale, again.rejected) == (0, 3, 2)
