"""Tests and benchmarks publish to topics of their own, which the last session deletes
(streaming/ingest/session_topics.py; docs/local-services.md)."""

import importlib
import os
import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from django.conf import settings

from streaming.ingest.kafka_config import producer_config
from streaming.ingest.session_topics import lock_path, session_topic

# What `make run` consumes (services.sh env exports it; base.py's defaults otherwise).
DEV_TOPIC = os.environ.get("MINIO_KAFKA_TOPIC", "minio-events")
DEV_ARN = os.environ.get("MINIO_NOTIFY_ARN", "arn:minio:sqs::PIPELENS:kafka")


def test_tests_and_benchmarks_publish_through_targets_of_their_own():
    bench = importlib.import_module("vizsite.settings.bench")
    topics = {DEV_TOPIC, settings.MINIO_KAFKA_TOPIC, bench.MINIO_KAFKA_TOPIC}
    arns = {DEV_ARN, settings.MINIO_NOTIFY_ARN, bench.MINIO_NOTIFY_ARN}
    assert len(topics) == 3, topics
    assert len(arns) == 3, arns


def test_a_session_refuses_the_topic_make_run_consumes():
    with (
        pytest.raises(ValueError, match="make run"),
        session_topic(DEV_TOPIC, bootstrap=settings.KAFKA_BOOTSTRAP_SERVERS),
    ):
        pass


def test_the_topic_lives_until_the_last_session_leaves(kafka_bootstrap, unique_name):
    topic = unique_name("t-session")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})

    def listed() -> bool:
        return topic in admin.list_topics(timeout=10).topics

    try:
        with session_topic(topic, bootstrap=kafka_bootstrap, quiet_s=0.5):
            assert listed()
            with session_topic(
                topic, bootstrap=kafka_bootstrap, quiet_s=0.5
            ):  # a second session on the machine
                assert listed()
            assert listed(), "deleted while another session still used it"
        assert not listed()
        with session_topic(
            topic, bootstrap=kafka_bootstrap, quiet_s=0.5
        ):  # the next session creates it again
            assert listed()
        assert not listed()
    finally:
        os.remove(lock_path(topic=topic, bootstrap=kafka_bootstrap))


def test_the_last_session_waits_for_late_events_before_deleting(kafka_bootstrap, unique_name):
    topic = unique_name("t-session")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    producer = Producer(producer_config())

    def late_events():  # as MinIO sends its queue dir after the session's last upload
        for _ in range(4):
            time.sleep(0.5)
            producer.produce(topic, b"late")
            producer.flush(10)

    try:
        with session_topic(topic, bootstrap=kafka_bootstrap, quiet_s=1.0):
            sender = threading.Thread(target=late_events)
            sender.start()
            leaving = time.monotonic()
        waited = time.monotonic() - leaving
        sender.join()
        # A deletion before the last event would have let Kafka create the topic again.
        assert topic not in admin.list_topics(timeout=10).topics
        assert waited >= 2.5, f"deleted after {waited:.1f} s, before the events stopped"
    finally:
        os.remove(lock_path(topic=topic, bootstrap=kafka_bootstrap))
