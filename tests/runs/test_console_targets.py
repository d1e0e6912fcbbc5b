"""Operations console, MinIO's Kafka targets (issue 9 item 2) through its admin API.

MinIO loads notification targets only when it starts (docs/operations.md), so
these tests run a private MinIO of their own (the same pinned binary as
deploy/local, on a free loopback port, in a temporary directory) which they
may restart: the shared MinIO is never restarted or reconfigured.
"""

import json
import os
import signal
import socket
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from django.conf import settings as django_settings

from runs.models import Bucket, KafkaTopic
from runs.services.buckets import bucket_create
from runs.services.store_targets import TargetError, store_restart, store_target_remove, store_target_set
from runs.services.topics import topic_create
from runs.storage import kafka_targets_read, minio_client
from streaming.ingest.kafka_config import consumer_config
from tests.helpers import put, wait_for

pytestmark = pytest.mark.django_db

MINIO_BIN = Path(django_settings.BASE_DIR) / ".local" / "bin" / "minio"
ENV_TARGET = "CONSOLEENV"


@pytest.fixture(scope="module")
def private_minio(tmp_path_factory, kafka_bootstrap):
    """A MinIO of this module only, started with one environment-defined Kafka target."""
    if not MINIO_BIN.exists():
        pytest.fail(f"{MINIO_BIN} is missing: run `make services` (it builds MinIO)", pytrace=False)
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    root = tmp_path_factory.mktemp("private-minio")
    env = {
        **os.environ,
        "MINIO_ROOT_USER": "console-admin",
        "MINIO_ROOT_PASSWORD": "console-admin-secret",
        f"MINIO_NOTIFY_KAFKA_ENABLE_{ENV_TARGET}": "on",
        f"MINIO_NOTIFY_KAFKA_BROKERS_{ENV_TARGET}": kafka_bootstrap,
        f"MINIO_NOTIFY_KAFKA_TOPIC_{ENV_TARGET}": "console-env-topic",
        "MINIO_API_SYNC_EVENTS": "on",
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    log = (root / "minio.log").open("ab")
    proc = subprocess.Popen(
        [str(MINIO_BIN), "server", str(root / "data"), "--address", f"127.0.0.1:{ports[0]}",
         "--console-address", f"127.0.0.1:{ports[1]}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip

    def ready():
        assert proc.poll() is None, (root / "minio.log").read_text()[-2000:]
        try:
            return (
                urllib.request.urlopen(f"http://127.0.0.1:{ports[0]}/minio/health/ready", timeout=1).status
                == 200
            )
        except OSError:
            return False

    wait_for(ready, timeout=60, what="the private MinIO")
    yield {
        "endpoint": f"127.0.0.1:{ports[0]}",
        "access_key": "console-admin",
        "secret_key": "console-admin-secret",
        "secure": False,
        "kind": "minio",
    }
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(30)


@pytest.fixture
def private_store(private_minio, settings):
    alias = f"private{uuid.uuid4().hex[:6]}"  # clients are cached per alias
    settings.OBJECT_STORES = {**settings.OBJECT_STORES, alias: private_minio}
    return alias


@pytest.fixture
def second_topic(kafka_bootstrap, unique_name):
    from confluent_kafka.admin import AdminClient

    topic = topic_create(name=unique_name("console-second"), partitions=1)
    try:
        yield topic
    finally:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})  # kept alive until the deletion answers
        admin.delete_topics([topic.name])[topic.name].result(20)


def test_a_new_target_for_a_second_topic_carries_events_to_that_topic(
    admin_client, private_store, second_topic, unique_name
):
    target_id = "CONSOLE" + uuid.uuid4().hex[:8].upper()
    response = admin_client.post(
        "/admin/runs/bucket/targets/",
        {"store": private_store, "action": "set", "target_id": target_id, "topic": second_topic.name},
    )
    assert response.status_code == 302
    assert "restart it below" in admin_client.get(response.url).content.decode()
    # MinIO stored it but runs without it until it restarts (notify_kafka is not dynamic).
    assert target_id not in {t.id for t in kafka_targets_read(store=private_store)}
    response = admin_client.post(
        "/admin/runs/bucket/targets/", {"store": private_store, "action": "restart", "target_id": target_id}
    )
    assert "targets are loaded" in admin_client.get(response.url).content.decode()
    page = admin_client.get("/admin/runs/bucket/targets/").content.decode()
    row = page.split(f'<tr data-target="{target_id}">', 1)[1].split("</tr>", 1)[0]
    assert f'<td class="topic">{second_topic.name}</td>' in row and "admin API" in row

    bucket = bucket_create(
        name=f"console-{uuid.uuid4().hex[:10]}",
        store=private_store,
        topic=second_topic,
        layouts=["generic"],
        notify_arn=f"arn:minio:sqs::{target_id}:kafka",
    )
    consumer = Consumer(consumer_config(group_id=unique_name("console-group")))  # reads from the start
    try:
        consumer.subscribe([second_topic.name])
        put(minio_client(private_store), bucket.name, "run-1/step/out.txt")

        def got():
            msg = consumer.poll(0.5)
            return msg is not None and not msg.error() and json.loads(msg.value())["Key"]

        assert (
            wait_for(got, timeout=30, what="the event on the second topic")
            == f"{bucket.name}/run-1/step/out.txt"
        )
    finally:
        consumer.close()
    with pytest.raises(TargetError, match="publish through"):
        store_target_remove(store=private_store, target_id=target_id)


def test_a_target_defined_by_the_environment_is_read_only(admin_client, private_store):
    (env_target,) = [t for t in kafka_targets_read(store=private_store) if t.id == ENV_TARGET]
    assert env_target.from_env and env_target.topic == "console-env-topic"
    response = admin_client.post(
        "/admin/runs/bucket/targets/",
        {"store": private_store, "action": "set", "target_id": ENV_TARGET, "topic": "elsewhere"},
    )
    assert "defined by MinIO&#x27;s environment" in admin_client.get(response.url).content.decode()
    with pytest.raises(TargetError, match="environment"):
        store_target_remove(store=private_store, target_id=ENV_TARGET)


@pytest.mark.parametrize(
    ("target_id", "topic", "brokers", "message"),
    [
        ("bad id", "t", "", "letters, digits or '_'"),
        ("GOODID", "bad topic", "", "not a valid Kafka topic name"),
        ("GOODID", "t", "127.0.0.1:1", "kafka"),  # MinIO tries the brokers before it stores
    ],
)
def test_bad_targets_are_refused_and_nothing_is_stored(private_store, target_id, topic, brokers, message):
    with pytest.raises(TargetError, match=message):
        store_target_set(store=private_store, target_id=target_id, topic=topic, brokers=brokers)
    store_restart(store=private_store)
    assert "GOODID" not in {t.id for t in kafka_targets_read(store=private_store)}


def test_a_bucket_naming_a_target_the_store_lacks_is_refused(private_store, kafka_bootstrap):
    topic = KafkaTopic.objects.create(name="console-nowhere")
    name = f"console-{uuid.uuid4().hex[:10]}"
    from runs.services.buckets import BucketError

    with pytest.raises(BucketError, match="has no notification target arn:minio:sqs::NOPE:kafka"):
        bucket_create(
            name=name,
            store=private_store,
            topic=topic,
            layouts=["generic"],
            notify_arn="arn:minio:sqs::NOPE:kafka",
        )
    assert not Bucket.objects.exists() and not minio_client(private_store).bucket_exists(name)
