"""The whole ingest path on the real services: MinIO → Kafka → consume_events → PostgreSQL.

Objects are written with the official ``minio`` client; MinIO publishes to
the real Kafka; the consumer (in a thread, or as ``manage.py consume_events``
in a subprocess where a kill or a signal is involved) stores them.
"""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.db import connection

from runs.models import Artifact, IngestError, KafkaTopic, Run
from streaming.ingest.kafka_config import consumer_config, producer_config
from tests.conftest import skip_to_end
from tests.helpers import database_url, put, wait_for
from tests.streaming.ingest.test_s3_events import minio_message
from tests.tcp_proxy import TCPProxy

ROOT = Path(__file__).resolve().parents[3]
TOPIC = settings.MINIO_KAFKA_TOPIC


def errors_about(bucket) -> list[str]:
    """Ingest errors that name this test's bucket: other test sessions on the
    machine publish to the same test topic, so a global count would also see
    theirs."""
    return list(IngestError.objects.filter(error__contains=f"'{bucket}'").values_list("error", flat=True))


def stored(bucket, key):
    return Artifact.objects.filter(bucket__name=bucket, key=key).select_related("run", "step").first()


def produce(value: bytes, *, key: bytes | None = None, topic: str = TOPIC) -> tuple[int, int]:
    """Publish one raw message; returns its (partition, offset)."""
    producer = Producer(producer_config())
    where = {}

    def delivered(err, msg):
        assert err is None, err
        where["at"] = (msg.partition(), msg.offset())

    producer.produce(topic, value=value, key=key, on_delivery=delivered)
    assert producer.flush(10) == 0
    return where["at"]


def committed(group: str, partition: int, topic: str = TOPIC) -> int:
    reader = Consumer(consumer_config(group_id=group))
    try:
        return reader.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
    finally:
        reader.close()


def wait_consumed(group: str, partition: int, offset: int, topic: str = TOPIC):
    wait_for(
        lambda: committed(group, partition, topic) > offset,
        what=f"group {group} to commit past {topic}[{partition}]@{offset}",
    )


def raw_messages_for(bucket: str, start: dict[int, int], count: int) -> list[bytes]:
    """The first ``count`` messages about ``bucket`` at or after ``start`` offsets, in order."""
    reader = Consumer(consumer_config(group_id=f"reader-{time.monotonic_ns()}"))
    reader.assign([TopicPartition(TOPIC, p, o) for p, o in start.items()])
    found: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 20
    try:
        while len(found) < count and time.monotonic() < deadline:
            msg = reader.poll(0.2)
            if msg is None or msg.error():
                continue
            if (msg.key() or b"").decode().startswith(bucket + "/"):
                found.append(
                    (json.loads(msg.value())["Records"][0]["s3"]["object"]["sequencer"], msg.value())
                )
    finally:
        reader.close()
    assert len(found) == count, f"found {len(found)} of {count} messages for {bucket}"
    return [value for _, value in sorted(found)]


def topic_ends(topic: str = TOPIC) -> dict[int, int]:
    reader = Consumer(consumer_config(group_id="ends"))
    try:
        parts = reader.list_topics(topic, timeout=10).topics[topic].partitions
        return {p: reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    finally:
        reader.close()


# --- keys, overwrites, deletes, multipart -----------------------------------------

KEYS = {
    # key: (run key, step, artifact name)
    "my run/step one/file with spaces.txt": ("my run", "step one", "file with spaces.txt"),
    "run+plus/st+ep/a+b%20c 100%.csv": ("run+plus", "st+ep", "a+b%20c 100%.csv"),
    "lauf-ü/schritt-ß/数据 ✓.json": ("lauf-ü", "schritt-ß", "数据 ✓.json"),
    "deep/step/a/b/c/d/e/f/g.txt": ("deep", "step", "a/b/c/d/e/f/g.txt"),
    "artifacts/iris-pipeline-7xk2p/2026/11/29/iris-pipeline-7xk2p-3301820553/mlpipeline-metrics.tgz": (
        "artifacts/iris-pipeline-7xk2p",
        "iris-pipeline-7xk2p-3301820553",
        "mlpipeline-metrics.tgz",
    ),
    "v2/artifacts/iris/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10/train-model/"
    "0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/model/weights v1.bin": (
        "v2/artifacts/iris/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10",
        "train-model",
        "model/weights v1.bin",
    ),
}


def test_keys_with_spaces_plus_percent_unicode_and_depth_land_on_the_right_rows(
    minio, live_bucket, running_consumer
):
    for key in KEYS:
        put(minio, live_bucket.name, key)
    for key, (run_key, step, name) in KEYS.items():
        artifact = wait_for(lambda key=key: stored(live_bucket.name, key), what=f"artifact {key!r}")
        assert (artifact.run.run_key, artifact.step.name, artifact.name) == (run_key, step, name)
        assert artifact.size == 5 and not artifact.deleted
    assert errors_about(live_bucket.name) == []


def test_overwrite_gives_one_artifact_with_the_newer_etag(minio, live_bucket, running_consumer):
    key = "run/step/out.txt"
    put(minio, live_bucket.name, key, b"first")
    etag2 = put(minio, live_bucket.name, key, b"second version").etag
    artifact = wait_for(
        lambda: (a := stored(live_bucket.name, key)) and a.etag == etag2 and a, what="the second version"
    )
    assert artifact.size == len(b"second version")
    assert Artifact.objects.filter(key=key).count() == 1
    assert artifact.run.artifact_count == 1


def test_delete_marks_the_artifact_deleted(minio, live_bucket, running_consumer):
    put(minio, live_bucket.name, "run/step/a.txt")
    put(minio, live_bucket.name, "run/step/b.txt")
    wait_for(lambda: Run.objects.filter(bucket=live_bucket, artifact_count=2).exists(), what="two artifacts")
    minio.remove_object(live_bucket.name, "run/step/a.txt")
    wait_for(lambda: stored(live_bucket.name, "run/step/a.txt").deleted, what="deleted flag")
    assert Run.objects.get(bucket=live_bucket).artifact_count == 1


def test_multipart_upload_counts_as_created(minio, live_bucket, running_consumer):
    data = os.urandom(11 * 1024 * 1024)
    minio.put_object(
        live_bucket.name, "run/step/big.bin", io.BytesIO(data), length=-1, part_size=5 * 1024 * 1024
    )
    artifact = wait_for(lambda: stored(live_bucket.name, "run/step/big.bin"), what="multipart object")
    assert artifact.size == len(data) and artifact.etag.endswith("-3")


# --- duplicates and order ---------------------------------------------------------


def test_same_message_delivered_twice_gives_no_duplicate(minio, live_bucket, running_consumer):
    start = topic_ends()
    put(minio, live_bucket.name, "run/step/a.txt")
    first = wait_for(lambda: stored(live_bucket.name, "run/step/a.txt"), what="artifact")
    [raw] = raw_messages_for(live_bucket.name, start, 1)
    partition, offset = produce(raw, key=f"{live_bucket.name}/run/step/a.txt".encode())
    wait_consumed(running_consumer.group_id, partition, offset)
    again = Artifact.objects.get(bucket=live_bucket)
    assert (again.id, again.etag, again.updated_at) == (first.id, first.etag, first.updated_at)
    assert Run.objects.get(bucket=live_bucket).artifact_count == 1


def test_older_event_replayed_after_a_newer_one_changes_nothing(minio, live_bucket, running_consumer):
    start = topic_ends()
    key = "run/step/model.txt"
    put(minio, live_bucket.name, key, b"v1")
    etag2 = put(minio, live_bucket.name, key, b"version 2").etag
    wait_for(lambda: (a := stored(live_bucket.name, key)) and a.etag == etag2, what="v2 stored")
    older, newer = raw_messages_for(live_bucket.name, start, 2)
    partition, offset = produce(older, key=f"{live_bucket.name}/{key}".encode())
    wait_consumed(running_consumer.group_id, partition, offset)
    artifact = stored(live_bucket.name, key)
    assert (artifact.etag, artifact.size) == (etag2, len(b"version 2"))


# --- bad input --------------------------------------------------------------------

BAD_MESSAGES = {
    b"{not json": "not valid JSON",
    b"\xff\xfe\x00garbage": "not UTF-8",
    b'{"EventName": "s3:ObjectCreated:Put", "Key": "b/k"}': "Records",
    b"": "empty",
}


def test_bad_messages_become_ingest_errors_and_consumption_goes_on(minio, live_bucket, running_consumer):
    coordinates = {}
    for value, _ in BAD_MESSAGES.items():
        coordinates[value] = produce(value, key=b"junk")
    put(minio, live_bucket.name, "run/step/after.txt")
    wait_for(
        lambda: stored(live_bucket.name, "run/step/after.txt"), what="the good object after the bad ones"
    )
    for value, reason in BAD_MESSAGES.items():
        partition, offset = coordinates[value]
        error = wait_for(
            lambda partition=partition, offset=offset: IngestError.objects.filter(
                topic=TOPIC, partition=partition, offset=offset
            ).first(),
            what=f"ingest error for {value!r}",
        )
        assert reason in error.error
        assert bytes(error.raw or b"") == value and bytes(error.message_key) == b"junk"


# --- topics follow the database ---------------------------------------------------


def test_consumer_follows_a_new_topic_without_restart(live_bucket, running_consumer, unique_name):
    topic = unique_name("t-topic")
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
    try:
        KafkaTopic.objects.create(name=topic)
        message = minio_message("run/step/from-new-topic.txt", bucket=live_bucket.name)
        produce(json.dumps(message).encode(), topic=topic)
        artifact = wait_for(
            lambda: stored(live_bucket.name, "run/step/from-new-topic.txt"),
            what="the event from the new topic",
        )
        assert artifact.etag == "d41d8cd98f00b204e9800998ecf8427e"
    finally:
        admin.delete_topics([topic])[topic].result(10)


# --- the command as a process: kill, signals, lost database -----------------------


def start_command(group: str, log_path: Path, *, db_port: int | None = None) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
        "DATABASE_URL": database_url(db_port),
        "KAFKA_TOPIC_REFRESH_S": "0.2",
        "KAFKA_BATCH_SIZE": "50",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "consume_events", "--group", group],
        cwd=ROOT,
        env=env,
        stdout=log_path.open("ab"),
        stderr=subprocess.STDOUT,
    )


def stop_command(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


def test_sigkill_mid_stream_then_restart_stores_every_object_exactly_once(
    minio, live_bucket, unique_name, tmp_path
):
    group = unique_name("test-group")
    skip_to_end(group_id=group, topic=TOPIC)
    keys = [f"run-{i % 4}/step-{i % 7}/object-{i}.txt" for i in range(240)]
    proc = start_command(group, tmp_path / "consumer.log")
    try:
        for key in keys[:120]:
            put(minio, live_bucket.name, key)
        wait_for(lambda: Artifact.objects.filter(bucket=live_bucket).count() >= 40, what="40 stored")
        proc.kill()  # SIGKILL: no batch finishing, no commit, no goodbye
        proc.wait(timeout=10)
        for key in keys[120:]:
            put(minio, live_bucket.name, key)
        proc = start_command(group, tmp_path / "consumer.log")
        wait_for(
            lambda: Artifact.objects.filter(bucket=live_bucket).count() == len(keys),
            timeout=60,
            what="every object stored",
        )
    finally:
        stop_command(proc)
    stored_keys = list(Artifact.objects.filter(bucket=live_bucket).values_list("key", flat=True))
    assert sorted(stored_keys) == sorted(keys)
    assert sum(Run.objects.filter(bucket=live_bucket).values_list("artifact_count", flat=True)) == len(keys)
    assert errors_about(live_bucket.name) == []


def test_sigterm_stops_the_command_cleanly(live_bucket, unique_name, tmp_path):
    group = unique_name("test-group")
    skip_to_end(group_id=group, topic=TOPIC)
    log = tmp_path / "consumer.log"
    proc = start_command(group, log)
    wait_for(lambda: b"event=subscribed" in log.read_bytes(), what="the consumer to subscribe")
    assert stop_command(proc) == 0
    assert b"event=consumer_stopped" in log.read_bytes()


def test_lost_database_stops_progress_not_the_consumer(minio, live_bucket, unique_name, tmp_path):
    s = connection.settings_dict
    proxy = TCPProxy(s["HOST"], int(s["PORT"])).start()
    group = unique_name("test-group")
    skip_to_end(group_id=group, topic=TOPIC)
    log = tmp_path / "consumer.log"
    proc = start_command(group, log, db_port=proxy.port)
    try:
        put(minio, live_bucket.name, "run/step/before.txt")
        wait_for(lambda: stored(live_bucket.name, "run/step/before.txt"), what="first object")
        proxy.cut()
        put(minio, live_bucket.name, "run/step/during-1.txt")
        put(minio, live_bucket.name, "run/step/during-2.txt")
        wait_for(lambda: b"event=database_unavailable" in log.read_bytes(), what="the outage to be noticed")
        # A retry after the first back-off also failed: a leaky cut would have let it through.
        wait_for(lambda: log.read_bytes().count(b"event=database_unavailable") >= 2, what="a failed retry")
        assert proc.poll() is None, "the consumer died with the database"
        assert stored(live_bucket.name, "run/step/during-1.txt") is None
        assert stored(live_bucket.name, "run/step/during-2.txt") is None
        proxy.restore()
        for key in ("run/step/during-1.txt", "run/step/during-2.txt"):
            wait_for(
                lambda key=key: stored(live_bucket.name, key), timeout=60, what=f"{key} after the outage"
            )
    finally:
        proxy.restore() if proxy._server is None else None
        assert stop_command(proc) == 0
        proxy.cut()
    assert Artifact.objects.filter(bucket=live_bucket).count() == 3


def test_a_topic_row_for_a_missing_topic_does_not_disturb_the_others(
    minio, live_bucket, running_consumer, unique_name, caplog
):
    missing = unique_name("t-deleted-topic")
    KafkaTopic.objects.create(name=missing)
    wait_for(lambda: "event=topic_missing" in caplog.text, what="the consumer to notice the missing topic")
    # It follows the topics that exist and leaves the missing one out of its subscription.
    # (The log line comes just before the subscription is recorded: wait for both.)
    wait_for(
        lambda: missing not in running_consumer.consumer._topics and running_consumer.consumer._topics,
        what="the consumer to follow the existing topics only",
    )
    put(minio, live_bucket.name, "run/step/after-missing-topic.txt")
    wait_for(lambda: stored(live_bucket.name, "run/step/after-missing-topic.txt"), what="the object")
