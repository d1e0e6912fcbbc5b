"""Pushes after commit, through the real Redis channel layer: one message per run per batch,
each carrying the run's seq and the artifacts' current state."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from runs.models import Artifact, Rendition, Run
from runs.services.changes import Changes, changes_on_commit, runs_touch
from runs.services.ingest import ingest_events
from streaming.live import groups
from streaming.live.broadcast import on_changes
from tests.factories import BucketFactory, object_event

pytestmark = pytest.mark.django_db


async def _listen(group_names, trigger, *, expect: int, timeout: float = 5.0):
    """Join ``group_names`` on the real layer, run ``trigger`` (sync), collect ``expect`` messages."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    for name in group_names:
        await layer.group_add(name, channel)
    try:
        await sync_to_async(trigger)()
        got = []
        for _ in range(expect):
            got.append(await asyncio.wait_for(layer.receive(channel), timeout))
        # Nothing more than expected: one message per run per batch.
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.3)
        return got
    finally:
        for name in group_names:
            await layer.group_discard(name, channel)


def text(event):
    """The JSON a browser receives for a channel-layer event."""
    return json.loads(event["text"])


def listen(group_names, trigger, *, expect):
    return async_to_sync(_listen)(group_names, trigger, expect=expect)


def _ingest(bucket, *keys, seconds=0.0):
    return ingest_events(
        events=[object_event(bucket.name, k, seconds=seconds + i) for i, k in enumerate(keys)]
    )


def test_runs_touch_bumps_seq_and_returns_the_new_values():
    bucket = BucketFactory()
    _ingest(bucket, "r1/s/a.txt", "r2/s/b.txt")
    r1, r2 = Run.objects.get(run_key="r1"), Run.objects.get(run_key="r2")
    assert runs_touch(run_ids=[r1.pk, r2.pk, r1.pk, 999_999_999]) == {r1.pk: r1.seq + 1, r2.pk: r2.seq + 1}
    assert runs_touch(run_ids=[]) == {}
    r1.refresh_from_db()
    assert r1.seq == 2


def _push(result):
    """What the change listener receives for an ingest batch once it commits."""
    on_changes(
        Changes(
            run_ids=frozenset(result.run_seqs), artifact_ids=tuple(result.changed_artifact_ids), ingested=True
        )
    )


def test_nothing_is_pushed_before_commit_then_one_message_per_run(django_capture_on_commit_callbacks):
    bucket = BucketFactory()
    _ingest(bucket, "r1/s/a.txt", "r1/s/b.txt", "r2/s/c.txt")
    r1, r2 = Run.objects.get(run_key="r1"), Run.objects.get(run_key="r2")
    ids = list(Artifact.objects.order_by("key").values_list("id", flat=True))
    a = Artifact.objects.get(key="r1/s/a.txt")
    Rendition.objects.create(
        artifact=a, etag=a.etag, position=0, viewer="text", title="A", status=Rendition.Status.READY
    )
    Rendition.objects.create(artifact=a, etag="old-version", position=0, viewer="text", status="failed")

    callbacks = []

    def trigger():
        with django_capture_on_commit_callbacks(execute=False) as captured:
            changes_on_commit(artifact_ids=ids)
        callbacks.extend(captured)

    # Registered, but nothing sent while the transaction is open.
    assert listen([groups.run_group(r1.pk)], trigger, expect=0) == []
    assert len(callbacks) == 1

    got = listen(
        [groups.run_group(r1.pk), groups.run_group(r2.pk), groups.runs_list_group()], callbacks[0], expect=4
    )
    run_msgs = {text(m)["run_id"]: text(m) for m in got if m["type"] == "run.changed"}
    list_msgs = [text(m) for m in got if m["type"] == "runs.changed"]
    assert all(m["bucket_id"] == bucket.pk for m in got if m["type"] == "runs.changed")
    assert set(run_msgs) == {r1.pk, r2.pk}
    assert {m["run"]["id"] for m in list_msgs} == {r1.pk, r2.pk}
    first = run_msgs[r1.pk]
    assert first["seq"] == r1.seq and first["type"] == "run.changed"
    assert [x["name"] for x in first["artifacts"]] == ["a.txt", "b.txt"]
    # Only the current version's renditions travel.
    assert first["artifacts"][0]["renditions"] == [
        {
            "id": a.renditions.get(etag=a.etag).pk,
            "position": 0,
            "viewer": "text",
            "title": "A",
            "status": "ready",
            "error": "",
        }
    ]
    assert first["run"]["artifact_count"] == 2


def test_ingest_hook_pushes_each_touched_run_with_its_new_seq(django_capture_on_commit_callbacks):
    bucket = BucketFactory()
    _ingest(bucket, "r1/s/a.txt")
    run = Run.objects.get(run_key="r1")
    results = []

    def trigger():
        results.append(_ingest(bucket, "r1/s/b.txt", seconds=10))
        _push(results[0])

    got = listen([groups.run_group(run.pk)], trigger, expect=1)
    message = text(got[0])
    assert message["seq"] == results[0].run_seqs[run.pk] == run.seq + 1
    assert [a["name"] for a in message["artifacts"]] == ["b.txt"]


def test_a_batch_of_only_stale_events_still_pushes_the_new_seq():
    bucket = BucketFactory()
    _ingest(bucket, "r1/s/a.txt", seconds=100)
    run = Run.objects.get(run_key="r1")
    results = []

    def trigger():
        results.append(_ingest(bucket, "r1/s/a.txt", seconds=0))  # older than stored
        _push(results[0])

    got = listen([groups.run_group(run.pk)], trigger, expect=1)
    assert results[0].stored == 0
    assert text(got[0])["seq"] == run.seq + 1 and text(got[0])["artifacts"] == []


@pytest.mark.parametrize("limit, partial", [(2, True), (3, False)])
def test_a_batch_over_the_push_limit_sends_partial_run_summaries(settings, limit, partial):
    settings.BROADCAST_MAX_ARTIFACTS = limit
    bucket = BucketFactory()
    _ingest(bucket, "r1/s/a.txt")
    run = Run.objects.get(run_key="r1")
    results = []

    def trigger():
        results.append(_ingest(bucket, "r1/s/b.txt", "r1/s/c.txt", "r1/s/d.txt", seconds=10))
        _push(results[0])

    message = text(listen([groups.run_group(run.pk)], trigger, expect=1)[0])
    assert message["partial"] is partial
    assert message["seq"] == run.seq + 1 and message["run"]["artifact_count"] == 4
    names = sorted(a["name"] for a in message["artifacts"])
    assert names == ([] if partial else ["b.txt", "c.txt", "d.txt"])
