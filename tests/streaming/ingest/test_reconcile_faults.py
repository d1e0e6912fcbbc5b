"""Completeness through outages, on real services in the recommended configuration.

MinIO publishes without a queue dir (docs/reconcile.md): what it cannot send
while Kafka is down is gone from the stream, and a consumer that stays away
longer than the topic's retention never sees some events. The reconciler
must make the database equal to the bucket anyway. These tests run a private
Kafka and MinIO (tests/private_stack.py), because they stop the broker and let
retention delete a topic's messages.
"""

from __future__ import annotations

import io
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from runs.models import Artifact, BucketSweep, Run
from runs.services.buckets import bucket_register
from runs.storage import minio_client
from tests.conftest import ConsumerThread
from tests.helpers import wait_for
from tests.private_stack import PrivateKafka, PrivateMinio

pytestmark = pytest.mark.django_db(transaction=True)

TOPIC = "fault-events"
STORE = "fault"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("private-stack")
    kafka = PrivateKafka(home / "kafka")
    kafka.start()
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])[TOPIC].result(30)
    minio = PrivateMinio(home / "minio", kafka, TOPIC)
    yield kafka, minio
    minio.stop()
    kafka.stop()


@pytest.fixture
def fault_settings(settings, stack):
    kafka, minio = stack
    settings.OBJECT_STORES = {**settings.OBJECT_STORES, STORE: minio.store_config()}
    settings.MINIO_NOTIFY_ARN = PrivateMinio.ARN
    settings.MINIO_KAFKA_TOPIC = TOPIC
    settings.KAFKA_BOOTSTRAP_SERVERS = kafka.bootstrap
    settings.RECONCILE_ENABLED = True
    settings.RECONCILE_RECENT_INTERVAL_S = 60.0
    minio_client.cache_clear()
    yield kafka, minio
    minio_client.cache_clear()


def _bucket(unique_name):
    bucket = bucket_register(name=unique_name("fault"), store=STORE)
    assert bucket.notification_status == "configured", bucket.notification_error
    return bucket


def _upload(client, bucket, keys, *, threads: int = 16) -> dict[str, str]:
    def one(key):
        data = key.encode()
        return key, client.put_object(bucket.name, key, io.BytesIO(data), len(data)).etag.strip('"')

    with ThreadPoolExecutor(threads) as pool:
        return dict(pool.map(one, keys))


def _database(bucket) -> dict[str, str]:
    return dict(Artifact.objects.filter(bucket=bucket, deleted=False).values_list("key", "etag"))


def _bucket_listing(client, bucket) -> dict[str, str]:
    return {o.object_name: o.etag.strip('"') for o in client.list_objects(bucket.name, recursive=True)}


def _consumer(group: str, kafka: PrivateKafka) -> ConsumerThread:
    worker = ConsumerThread(group)
    worker.consumer.bootstrap_servers = kafka.bootstrap
    worker.consumer.config["bootstrap.servers"] = kafka.bootstrap
    return worker


@pytest.mark.timeout(600)
def test_kafka_down_for_a_minute_while_1000_objects_are_uploaded(fault_settings, unique_name):
    kafka, minio = fault_settings
    client = minio.client()
    bucket = _bucket(unique_name)
    consumer = _consumer(unique_name("fault-group"), kafka).start()
    try:
        before = _upload(client, bucket, [f"run-live/step/before-{i}.txt" for i in range(20)])
        wait_for(lambda: _database(bucket) == before, timeout=60, what="the live events before the outage")

        kafka.stop()
        down_at = time.monotonic()
        keys = [f"run-{i % 10}/step-{i % 3}/during-{i:04d}.txt" for i in range(1000)]
        # MinIO (no queue dir, asynchronous events) accepts every PUT at once and
        # drops the events it cannot send.
        during = _upload(client, bucket, keys)
        uploaded_s = time.monotonic() - down_at
        time.sleep(max(0.0, 60 - uploaded_s))  # Kafka stays down a full minute
        kafka.start()
        print(f"1,000 uploads took {uploaded_s:.1f} s; Kafka was down {time.monotonic() - down_at:.0f} s")

        expected = {**before, **during}
        # The consumer sees the brokers come back and sweeps the bucket: within the
        # short reconcile period (60 s), whatever MinIO dropped meanwhile.
        wait_for(lambda: _database(bucket) == expected, timeout=90, interval=0.5, what="all 1,020 objects")
    finally:
        consumer.stop()
    assert Artifact.objects.filter(bucket=bucket).count() == 1020  # no duplicates
    assert sum(Run.objects.filter(bucket=bucket).values_list("artifact_count", flat=True)) == 1020
    gap = BucketSweep.objects.filter(bucket=bucket, reason=BucketSweep.Reason.GAP).first()
    assert gap is not None and gap.status == BucketSweep.Status.DONE and gap.stored >= 1000


@pytest.mark.timeout(600)
def test_consumer_away_past_retention_then_started_equals_the_bucket(fault_settings, unique_name):
    kafka, minio = fault_settings
    client = minio.client()
    bucket = _bucket(unique_name)
    group = unique_name("fault-group")
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})

    consumer = _consumer(group, kafka).start()
    try:
        first = _upload(client, bucket, [f"run-old/step/first-{i:03d}.txt" for i in range(100)])
        wait_for(lambda: _database(bucket) == first, timeout=60, what="events consumed and committed")
    finally:
        consumer.stop()

    # Consumer away: 1,000 uploads and 100 deletes (of objects it had stored), then
    # the topic's retention passes.
    keys = [f"run-{i % 7}/step/away-{i:04d}.txt" for i in range(1000)]
    _upload(client, bucket, keys)
    for key in first:
        client.remove_object(bucket.name, key)
    resource = ConfigResource("topic", TOPIC, set_config={"retention.ms": "1000", "segment.ms": "500"})
    try:
        admin.alter_configs([resource])[resource].result(30)
        time.sleep(1.5)
        # A segment rolls (and becomes deletable) only when a newer message arrives.
        producer = Producer({"bootstrap.servers": kafka.bootstrap})
        for partition in (0, 1):
            producer.produce(TOPIC, b"roll the segment", partition=partition)
        producer.flush(30)
        wait_for(
            lambda: all(_low(admin, kafka, p) > 0 for p in (0, 1)),
            timeout=60,
            interval=0.5,
            what="retention to delete the consumer's next messages",
        )
    finally:
        week = str(7 * 86400 * 1000)
        restore = ConfigResource("topic", TOPIC, set_config={"retention.ms": week, "segment.ms": week})
        admin.alter_configs([restore])[restore].result(30)

    consumer = _consumer(group, kafka).start()
    try:
        wait_for(
            lambda: _database(bucket) == _bucket_listing(client, bucket),
            timeout=90,
            interval=0.5,
            what="the database equal to the bucket",
        )
    finally:
        consumer.stop()
    assert Artifact.objects.filter(bucket=bucket, deleted=False).count() == 1000
    assert Artifact.objects.filter(bucket=bucket, deleted=True).count() == 100  # kept as deleted
    assert Artifact.objects.filter(bucket=bucket).count() == 1100  # no duplicates
    assert BucketSweep.objects.filter(bucket=bucket, reason=BucketSweep.Reason.GAP).exists()


def _low(admin: AdminClient, kafka: PrivateKafka, partition: int) -> int:
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "fault-watermarks"})
    try:
        low, _ = probe.get_watermark_offsets(TopicPartition(TOPIC, partition), timeout=10)
        return low
    finally:
        probe.close()
