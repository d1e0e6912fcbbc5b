"""The ingest path on the real SeaweedFS: S3 gateway → filer → Kafka (protobuf) → consumer → PostgreSQL.

Objects are written with the official ``minio`` client to SeaweedFS's S3
gateway (deploy/local/seaweedfs.sh); its filer publishes every change to the
real Kafka (notification.toml); the consumer follows the topic as a
``seaweedfs_filer`` topic. Renames and directories go through the filer's
HTTP API, as a user of the filer (or ``weed shell``) would make them.
"""

import io
import os
import time
import urllib.request
from urllib.parse import quote

from confluent_kafka import Consumer, Producer, TopicPartition
from django.conf import settings

from runs.layouts import resolve_key
from runs.models import Artifact, IngestError, KafkaTopic, Run
from streaming.ingest.kafka_config import consumer_config, producer_config
from tests.helpers import wait_for

TOPIC = settings.SEAWEEDFS_KAFKA_TOPIC
# The filer's HTTP API (deploy/local/services.sh env).
FILER = "http://" + os.environ.get("SEAWEEDFS_FILER_ENDPOINT", "127.0.0.1:19388")


def put(client, bucket, key, data: bytes = b"hello", **kw):
    return client.put_object(bucket, key, io.BytesIO(data), len(data), **kw)


def stored(bucket, key):
    return Artifact.objects.filter(bucket__name=bucket, key=key).select_related("run", "step").first()


def errors_about(bucket) -> list[str]:
    return list(IngestError.objects.filter(error__contains=f"'{bucket}'").values_list("error", flat=True))


def filer_post(path: str, query: str = "") -> int:
    url = FILER + quote(path) + (f"?{query}" if query else "")
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as response:
        return response.status


def topic_ends() -> dict[int, int]:
    reader = Consumer(consumer_config(group_id="ends"))
    try:
        parts = reader.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
        return {p: reader.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in parts}
    finally:
        reader.close()


def filer_messages(start: dict[int, int], path_key: bytes, count: int):
    """The first ``count`` messages with Kafka key ``path_key`` after ``start``, oldest first."""
    reader = Consumer(consumer_config(group_id=f"reader-{time.monotonic_ns()}"))
    reader.assign([TopicPartition(TOPIC, p, o) for p, o in start.items()])
    found = []
    deadline = time.monotonic() + 20
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = reader.poll(0.2)
            if msg is not None and not msg.error() and msg.key() == path_key:
                found.append(msg)
    finally:
        reader.close()
    assert len(found) == count, f"found {len(found)} of {count} filer messages for {path_key!r}"
    return sorted(found, key=lambda m: (m.timestamp()[1], m.offset()))


KEYS = {
    # key: (run key, step, artifact name), as on MinIO (test_consume_events.py)
    "my run/step one/file with spaces.txt": ("my run", "step one", "file with spaces.txt"),
    "run+plus/st+ep/a+b%20c 100%.csv": ("run+plus", "st+ep", "a+b%20c 100%.csv"),
    "lauf-ü/schritt-ß/数据 ✓.json": ("lauf-ü", "schritt-ß", "数据 ✓.json"),
    "deep/step/a/b/c/d/e/f/g.txt": ("deep", "step", "a/b/c/d/e/f/g.txt"),
}

# KFP 2.15+ on SeaweedFS: the same keys as on MinIO, resolved the same way.
KFP_KEYS = [
    "private-artifacts/team-a/iris-pipeline-7xk2p/2026/11/29/iris-pipeline-7xk2p-3301820553/"
    "mlpipeline-metrics.tgz",
    "private-artifacts/team-a/v2/artifacts/iris/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10/train-model/"
    "0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/model/weights v1.bin",
    "v2/artifacts/iris/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10/train-model/"
    "0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/metrics.json",
]


def test_the_bucket_is_registered_on_the_filer_topic(seaweed_bucket):
    assert seaweed_bucket.topic.name == TOPIC
    assert seaweed_bucket.topic.message_format == KafkaTopic.MessageFormat.SEAWEEDFS_FILER
    assert seaweed_bucket.store == "seaweedfs"


def test_keys_with_spaces_plus_percent_unicode_and_depth_land_on_the_right_rows(
    seaweedfs, seaweed_bucket, seaweed_consumer
):
    bucket = seaweed_bucket.name
    for key in KEYS:
        put(seaweedfs, bucket, key)
    for key, (run_key, step, name) in KEYS.items():
        artifact = wait_for(lambda key=key: stored(bucket, key), what=f"artifact {key!r}")
        assert (artifact.run.run_key, artifact.step.name, artifact.name) == (run_key, step, name)
        assert artifact.size == 5 and not artifact.deleted
        assert artifact.etag == seaweedfs.stat_object(bucket, key).etag
    assert errors_about(bucket) == []
    # The folders SeaweedFS made for those keys are directories: no artifact each.
    assert Artifact.objects.filter(bucket=seaweed_bucket).count() == len(KEYS)


def test_kfp_keys_resolve_exactly_as_on_minio(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket = seaweed_bucket.name
    for key in KFP_KEYS:
        put(seaweedfs, bucket, key)
    for key in KFP_KEYS:
        artifact = wait_for(lambda key=key: stored(bucket, key), what=f"artifact {key!r}")
        expected = resolve_key(key, seaweed_bucket.layouts)
        run = artifact.run
        assert (run.run_key, run.name, run.pipeline, run.namespace, run.layout) == (
            expected.run_key,
            expected.run_name,
            expected.pipeline,
            expected.namespace,
            expected.layout,
        )
        assert (artifact.step.name, artifact.name) == (expected.step_name, expected.artifact_name)
    assert Run.objects.get(bucket=seaweed_bucket, run_key__contains="7xk2p").namespace == "team-a"


def test_overwrite_gives_one_artifact_with_the_gateways_new_etag(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket, key = seaweed_bucket.name, "run/step/model.txt"
    put(seaweedfs, bucket, key, b"first")
    first = wait_for(lambda: stored(bucket, key), what="first version")
    put(seaweedfs, bucket, key, b"second version")
    etag = seaweedfs.stat_object(bucket, key).etag
    assert etag != first.etag
    newer = wait_for(
        lambda: (a := stored(bucket, key)) and a.etag == etag and a, what="the overwrite to be stored"
    )
    assert newer.pk == first.pk and newer.size == len(b"second version")
    assert newer.event_order > first.event_order
    assert Artifact.objects.filter(bucket=seaweed_bucket, key=key).count() == 1
    assert newer.run.artifact_count == 1


def test_delete_marks_the_artifact_deleted(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket, key = seaweed_bucket.name, "run/step/gone.txt"
    put(seaweedfs, bucket, key)
    wait_for(lambda: stored(bucket, key), what="the artifact")
    seaweedfs.remove_object(bucket, key)
    gone = wait_for(lambda: (a := stored(bucket, key)) and a.deleted and a, what="the deletion")
    assert gone.run.artifact_count == 0


def test_multipart_upload_counts_once_with_the_gateways_etag(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket, key = seaweed_bucket.name, "run/step/big.bin"
    data = b"x" * (6 * 1024 * 1024)
    put(seaweedfs, bucket, key, data, part_size=5 * 1024 * 1024)
    etag = seaweedfs.stat_object(bucket, key).etag
    assert etag.endswith("-2")
    artifact = wait_for(lambda: stored(bucket, key), what="the multipart object")
    put(seaweedfs, bucket, "run/step/marker.txt")  # after the parts' clean-up messages
    wait_for(lambda: stored(bucket, "run/step/marker.txt"), what="the marker")
    assert (artifact.etag, artifact.size) == (etag, len(data))
    assert list(
        Artifact.objects.filter(bucket=seaweed_bucket).values_list("key", flat=True).order_by("key")
    ) == [
        "run/step/big.bin",
        "run/step/marker.txt",
    ]
    assert errors_about(bucket) == []


def test_rename_through_the_filer_moves_the_artifact(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket = seaweed_bucket.name
    old, new = "run/train/a b.txt", "run/eval/c d.txt"
    put(seaweedfs, bucket, old, b"moved content")
    before = wait_for(lambda: stored(bucket, old), what="the original")
    assert filer_post(f"/buckets/{bucket}/{new}", "mv.from=" + quote(f"/buckets/{bucket}/{old}")) < 300
    moved = wait_for(lambda: stored(bucket, new), what="the renamed artifact")
    gone = wait_for(lambda: (a := stored(bucket, old)) and a.deleted and a, what="the old key to be removed")
    assert moved.etag == before.etag == seaweedfs.stat_object(bucket, new).etag
    assert (moved.step.name, moved.name, moved.deleted) == ("eval", "c d.txt", False)
    assert gone.pk == before.pk
    assert moved.run.artifact_count == 1


def test_directory_creation_adds_nothing(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket = seaweed_bucket.name
    assert filer_post(f"/buckets/{bucket}/run/empty-dir/") < 300
    assert filer_post(f"/buckets/{bucket}/run/step/nested/") < 300
    put(seaweedfs, bucket, "run/step/after.txt")  # the directories' messages come before it
    wait_for(lambda: stored(bucket, "run/step/after.txt"), what="the marker")
    assert list(Artifact.objects.filter(bucket=seaweed_bucket).values_list("key", flat=True)) == [
        "run/step/after.txt"
    ]
    assert errors_about(bucket) == []


def test_a_replayed_message_changes_nothing(seaweedfs, seaweed_bucket, seaweed_consumer):
    bucket, key = seaweed_bucket.name, "run/step/replayed.txt"
    start = topic_ends()
    put(seaweedfs, bucket, key, b"v1")
    put(seaweedfs, bucket, key, b"version two")
    seaweedfs.remove_object(bucket, key)
    gone = wait_for(lambda: (a := stored(bucket, key)) and a.deleted and a, what="the deletion")
    created_v1, created_v2, removed = filer_messages(start, f"/buckets/{bucket}/{key}".encode(), 3)
    run_seq = Run.objects.get(pk=gone.run_id).seq
    producer = Producer(producer_config())
    for msg in (created_v1, created_v2, removed):  # the same records again, timestamps included
        producer.produce(TOPIC, value=msg.value(), key=msg.key(), timestamp=msg.timestamp()[1])
    assert producer.flush(10) == 0
    put(seaweedfs, bucket, "run/step/marker.txt")
    wait_for(lambda: stored(bucket, "run/step/marker.txt"), what="the marker after the replay")
    again = stored(bucket, key)
    assert (again.deleted, again.etag, again.event_order) == (True, gone.etag, gone.event_order)
    # The marker bumped the run once; the replayed messages did not.
    assert Run.objects.get(pk=gone.run_id).seq == run_seq + 1
    assert errors_about(bucket) == []


def test_one_consumer_follows_minio_and_seaweedfs_topics(
    minio, live_bucket, seaweedfs, seaweed_bucket, seaweed_consumer
):
    """One consumer process, two topics of two formats (the MinIO test topic and the filer's)."""
    put(seaweedfs, seaweed_bucket.name, "run/step/from-seaweedfs.txt")
    minio.put_object(live_bucket.name, "run/step/from-minio.txt", io.BytesIO(b"m"), 1)
    wait_for(lambda: stored(seaweed_bucket.name, "run/step/from-seaweedfs.txt"), what="the SeaweedFS object")
    wait_for(lambda: stored(live_bucket.name, "run/step/from-minio.txt"), what="the MinIO object")
    assert errors_about(seaweed_bucket.name) == [] and errors_about(live_bucket.name) == []


def test_setup_demo_puts_the_demo_bucket_on_seaweedfs_and_back(seaweedfs, transactional_db, unique_name):
    """`PIPELENS_STORE=seaweedfs make run` registers the demo bucket on the filer's topic."""
    from django.core.management import call_command

    from runs.models import Bucket

    name = unique_name("demo")
    try:
        call_command("setup_demo", bucket=name, store="seaweedfs", stdout=io.StringIO())
        bucket = Bucket.objects.select_related("topic").get(name=name)
        assert (bucket.store, bucket.topic.name) == ("seaweedfs", TOPIC)
        assert bucket.notification_status == Bucket.NotificationStatus.IN_FILER_CONFIG
        assert seaweedfs.bucket_exists(name)
    finally:
        seaweedfs.remove_bucket(name)


# --- reconciliation against the S3 gateway (docs/reconcile.md) -----------------------


def test_reconcile_lists_the_gateway_and_agrees_with_the_filers_events(
    seaweedfs, seaweed_bucket, seaweed_consumer
):
    """The filer's events and the gateway's listing give the same etags: a sweep after the
    events changes nothing; an object whose event was lost is added; a deleted one removed."""
    from runs.services.reconcile import bucket_reconcile

    bucket = seaweed_bucket.name
    keys = KFP_KEYS + list(KEYS)
    for key in keys:
        put(seaweedfs, bucket, key, key.encode())
    put(seaweedfs, bucket, "run/step/big.bin", b"y" * (6 * 1024 * 1024), part_size=5 * 1024 * 1024)
    everything = [*keys, "run/step/big.bin"]
    wait_for(lambda: all(stored(bucket, k) for k in everything), what="every object through the filer")

    sweep = bucket_reconcile(bucket=seaweed_bucket)
    assert (sweep.status, sweep.listed, sweep.stored, sweep.deleted) == ("done", len(everything), 0, 0), (
        sweep.error
    )

    # As if the filer's messages had been lost: a row gone, and an object deleted unseen.
    Artifact.objects.filter(bucket=seaweed_bucket, key=KFP_KEYS[0]).delete()
    seaweed_consumer.stop()
    seaweedfs.remove_object(bucket, KFP_KEYS[1])

    sweep = bucket_reconcile(bucket=seaweed_bucket)

    assert (sweep.stored, sweep.deleted) == (1, 1), sweep.error
    listing = {o.object_name: o.etag.strip('"') for o in seaweedfs.list_objects(bucket, recursive=True)}
    live = dict(Artifact.objects.filter(bucket=seaweed_bucket, deleted=False).values_list("key", "etag"))
    assert live == listing
    assert stored(bucket, KFP_KEYS[0]).run.run_key == resolve_key(KFP_KEYS[0]).run_key
