"""The consumer follows topic changes without a restart (issue 9, item 7): a topic row
whose topic is created on the broker later, a topic disabled and enabled again, a topic
deleted on the broker. It re-reads them every KAFKA_TOPIC_REFRESH_S (5 s by default;
the test consumer 0.2 s), well within the 30 s the issue asks for."""

import json

from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

from runs.models import KafkaTopic
from tests.helpers import wait_for
from tests.streaming.ingest.test_consume_events import produce, stored
from tests.streaming.ingest.test_s3_events import minio_message


def subscription(caplog) -> set[str] | None:
    """The topics of the consumer's latest ``event=subscribed`` log line (None before any)."""
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("event=subscribed ")]
    if not lines:
        return None
    topics = lines[-1].split("topics=", 1)[1].split()[0]
    return set() if topics == "-" else set(topics.split(","))


def left(caplog, topic: str) -> bool:
    topics = subscription(caplog)
    return topics is not None and topic not in topics


def message(bucket: str, key: str) -> bytes:
    return json.dumps(minio_message(key, bucket=bucket)).encode()


def test_the_consumer_follows_a_topic_created_disabled_enabled_and_deleted(
    live_bucket, running_consumer, unique_name, caplog
):
    bucket = live_bucket.name
    topic = unique_name("t-topic")
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    row = KafkaTopic.objects.create(name=topic)  # before the topic exists on the broker
    wait_for(
        lambda: any(
            r.getMessage().startswith("event=topic_missing") and topic in r.getMessage()
            for r in caplog.records
        ),
        what="the consumer to notice that the topic is not on the broker yet",
    )
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)
    try:
        # Created on the broker: followed.
        produce(message(bucket, "run/step/created.txt"), topic=topic)
        wait_for(lambda: stored(bucket, "run/step/created.txt"), what="the event of the created topic")

        # Disabled: left; a message published meanwhile waits on the broker.
        row.enabled = False
        row.save(update_fields=["enabled"])
        wait_for(lambda: left(caplog, topic), what="the disabled topic to be left")
        produce(message(bucket, "run/step/while-disabled.txt"), topic=topic)
        produce(message(bucket, "run/step/on-the-main-topic.txt"))
        wait_for(lambda: stored(bucket, "run/step/on-the-main-topic.txt"), what="the main topic's event")
        assert stored(bucket, "run/step/while-disabled.txt") is None

        # Enabled again: the waiting message is consumed.
        row.enabled = True
        row.save(update_fields=["enabled"])
        wait_for(
            lambda: stored(bucket, "run/step/while-disabled.txt"), what="the message of the re-enabled topic"
        )
    finally:
        admin.delete_topics([topic])[topic].result(10)

    # Deleted on the broker (the row still enabled): dropped, and the others go on.
    wait_for(lambda: left(caplog, topic), what="the deleted topic to be left")
    produce(message(bucket, "run/step/after-delete.txt"))
    wait_for(lambda: stored(bucket, "run/step/after-delete.txt"), what="the main topic after the deletion")
