"""Operations console, topics (issue 9 item 1): the admin creates and changes topics on the real
Kafka through runs/services/topics.py and shows what the broker reports (docs/operations.md)."""

import socket

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource
from django.conf import settings

from runs.brokers import broker_topic_exists
from runs.models import KafkaTopic
from runs.selectors.topics import topic_broker_state
from runs.services.topics import TopicError, topic_create
from streaming.ingest.kafka_config import consumer_config, producer_config
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


def _form(**overrides):
    data = {
        "name": "",
        "message_format": "s3",
        "bootstrap_servers": "",
        "enabled": "on",
        "partitions": "1",
        "replication_factor": "1",
        "retention_ms": "",
        "notes": "",
    }
    data.update({k: str(v) for k, v in overrides.items()})
    return data


@pytest.fixture
def broker_topics(kafka_bootstrap, unique_name):
    """Unique topic names for one test; whatever of them exists on the broker at the end is deleted."""
    names = []

    def new():
        names.append(unique_name("console-topic"))
        return names[-1]

    yield new
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    existing = [n for n in names if n in admin.list_topics(timeout=10).topics]
    for future in admin.delete_topics(existing, operation_timeout=15).values() if existing else []:
        future.result(20)


def _partitions_on_broker(name: str) -> int:
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    return len(admin.list_topics(name, timeout=10).topics[name].partitions)


def test_creating_a_topic_in_the_admin_gives_the_partitions_asked_for(admin_client, broker_topics):
    name = broker_topics()
    response = admin_client.post(
        "/admin/runs/kafkatopic/add/", _form(name=name, partitions=3, retention_ms=3600000)
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert _partitions_on_broker(name) == 3
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    assert admin.describe_configs([resource])[resource].result(10)["retention.ms"].value == "3600000"
    topic = KafkaTopic.objects.get(name=name)
    assert (topic.partitions, topic.retention_ms) == (3, 3600000)
    page = admin_client.get(f"/admin/runs/kafkatopic/{topic.pk}/change/").content.decode()
    assert page.count('<tr data-partition="') == 3


@pytest.mark.parametrize("bad", ["has space", "..", "x" * 250, "ünïcode"])
def test_an_invalid_topic_name_is_refused_in_the_admin_and_nothing_is_created(
    admin_client, kafka_bootstrap, bad
):
    response = admin_client.post("/admin/runs/kafkatopic/add/", _form(name=bad))
    assert response.status_code == 200
    assert "is not a valid Kafka topic name" in response.content.decode() or "at most 249" in (
        response.content.decode()
    )
    assert not KafkaTopic.objects.exists()
    assert not broker_topic_exists(name=bad[:249], bootstrap=kafka_bootstrap)


def test_a_broker_that_is_down_is_named_and_nothing_is_saved(admin_client, broker_topics):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    name = broker_topics()
    response = admin_client.post("/admin/runs/kafkatopic/add/", _form(name=name, bootstrap_servers=dead))
    assert response.status_code == 200
    assert f"Kafka at {dead} is not reachable" in response.content.decode()
    assert not KafkaTopic.objects.exists()


def test_a_replication_factor_the_broker_cannot_give_is_refused(admin_client, broker_topics):
    name = broker_topics()
    response = admin_client.post("/admin/runs/kafkatopic/add/", _form(name=name, replication_factor=3))
    assert response.status_code == 200
    assert "refused to create topic" in response.content.decode()
    assert not KafkaTopic.objects.exists()
    assert not broker_topic_exists(name=name, bootstrap=settings.KAFKA_BOOTSTRAP_SERVERS)


def test_adding_partitions_is_seen_by_the_consumer(admin_client, broker_topics, unique_name):
    name = broker_topics()
    topic = topic_create(name=name, partitions=1)
    config = consumer_config(group_id=unique_name("console-group"))
    config["topic.metadata.refresh.interval.ms"] = 1000  # the test waits on it; the default is 10 s
    consumer = Consumer(config)
    try:
        consumer.subscribe([name])
        wait_for(lambda: consumer.poll(0.2) is None and consumer.assignment(), what="the first assignment")
        response = admin_client.post(
            f"/admin/runs/kafkatopic/{topic.pk}/change/",
            _form(partitions=3, message_format="s3", enabled="on"),
        )
        assert response.status_code == 302, response.content.decode()[-2000:]
        assert _partitions_on_broker(name) == 3

        def assigned_all():
            consumer.poll(0.2)
            return {tp.partition for tp in consumer.assignment()} == {0, 1, 2}

        wait_for(assigned_all, timeout=60, what="the consumer to be assigned the new partitions")
        producer = Producer(producer_config())
        producer.produce(name, b"on a new partition", partition=2)
        producer.flush(10)

        def got():
            msg = consumer.poll(0.5)
            return msg is not None and not msg.error() and (msg.partition(), msg.value())

        assert wait_for(got, timeout=30, what="the message on partition 2") == (2, b"on a new partition")
    finally:
        consumer.close()
    assert KafkaTopic.objects.get(pk=topic.pk).partitions == 3


def test_partitions_cannot_go_down_and_the_row_is_unchanged(admin_client, broker_topics):
    name = broker_topics()
    topic = topic_create(name=name, partitions=2)
    response = admin_client.post(f"/admin/runs/kafkatopic/{topic.pk}/change/", _form(partitions=1))
    assert response.status_code == 200
    assert "Kafka cannot remove partitions" in response.content.decode()
    assert KafkaTopic.objects.get(pk=topic.pk).partitions == 2 and _partitions_on_broker(name) == 2


def test_lag_figures_equal_what_the_broker_reports(admin_client, broker_topics, unique_name, settings):
    name = broker_topics()
    settings.KAFKA_CONSUMER_GROUP = unique_name("console-lag-group")
    topic = topic_create(name=name, partitions=2)
    producer = Producer(producer_config())
    for i in range(5):
        producer.produce(name, f"a{i}".encode(), partition=0)
    for i in range(3):
        producer.produce(name, f"b{i}".encode(), partition=1)
    producer.flush(10)
    committer = Consumer(consumer_config(group_id=settings.KAFKA_CONSUMER_GROUP))
    try:
        committer.commit(offsets=[TopicPartition(name, 0, 2)], asynchronous=False)
        # What the broker reports, asked through the consumer API.
        committed = {
            tp.partition: tp.offset
            for tp in committer.committed([TopicPartition(name, p) for p in (0, 1)], 10)
        }
        marks = {p: committer.get_watermark_offsets(TopicPartition(name, p), timeout=10) for p in (0, 1)}
    finally:
        committer.close()
    state = topic_broker_state(topic=topic)
    for p in state.partitions:
        low, high = marks[p.partition]
        assert (p.low, p.high) == (low, high)
        broker_committed = committed[p.partition]
        assert p.committed == (broker_committed if broker_committed >= 0 else None)
        assert p.lag == high - (broker_committed if broker_committed >= 0 else low)
    assert [p.lag for p in state.partitions] == [3, 3] and state.lag == 6
    page = admin_client.get(f"/admin/runs/kafkatopic/{topic.pk}/change/").content.decode()
    assert '<strong id="topic-total-lag">6</strong>' in page


def test_deleting_a_topic_row_keeps_the_broker_topic_unless_its_name_is_typed(admin_client, broker_topics):
    kept, gone = broker_topics(), broker_topics()
    for name in (kept, gone):
        topic_create(name=name, partitions=1)
    bootstrap = settings.KAFKA_BOOTSTRAP_SERVERS
    row = KafkaTopic.objects.get(name=kept)
    page = admin_client.get(f"/admin/runs/kafkatopic/{row.pk}/delete/").content.decode()
    assert "stay on the broker" in page
    admin_client.post(f"/admin/runs/kafkatopic/{row.pk}/delete/", {"post": "yes"})
    assert not KafkaTopic.objects.filter(name=kept).exists()
    assert broker_topic_exists(name=kept, bootstrap=bootstrap)

    row = KafkaTopic.objects.get(name=gone)
    response = admin_client.post(
        f"/admin/runs/kafkatopic/{row.pk}/delete/", {"post": "yes", "delete_on_broker_name": "wrong"}
    )
    assert KafkaTopic.objects.filter(name=gone).exists() and broker_topic_exists(
        name=gone, bootstrap=bootstrap
    )
    assert "nothing was deleted" in admin_client.get(response.url).content.decode()
    admin_client.post(
        f"/admin/runs/kafkatopic/{row.pk}/delete/", {"post": "yes", "delete_on_broker_name": gone}
    )
    assert not KafkaTopic.objects.filter(name=gone).exists()
    wait_for(lambda: not broker_topic_exists(name=gone, bootstrap=bootstrap), what="the topic to go")


def test_a_topic_already_on_the_broker_is_adopted_as_it_is(broker_topics):
    name = broker_topics()
    topic_create(name=name, partitions=2)
    KafkaTopic.objects.filter(name=name).delete()
    adopted = topic_create(name=name, partitions=5)
    assert adopted.partitions == 2 and _partitions_on_broker(name) == 2
    with pytest.raises(TopicError, match="already has a topic"):
        topic_create(name=name)


def test_saving_a_row_whose_topic_is_missing_on_the_broker_creates_it(admin_client, broker_topics):
    name = broker_topics()
    row = KafkaTopic.objects.create(name=name, partitions=1)  # registered before the console existed
    page = admin_client.get(f"/admin/runs/kafkatopic/{row.pk}/change/").content.decode()
    assert "does not exist on Kafka" in page
    response = admin_client.post(f"/admin/runs/kafkatopic/{row.pk}/change/", _form(partitions=2))
    assert response.status_code == 302, response.content.decode()[-2000:]
    assert _partitions_on_broker(name) == 2
