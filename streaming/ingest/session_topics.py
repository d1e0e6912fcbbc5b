"""Kafka topics that belong to a test session or a benchmark (docs/local-services.md).

MinIO publishes what tests and benchmarks upload through notification
targets of their own (PIPELENSTEST, PIPELENSBENCH; deploy/local/minio.sh), to
topics that `make run` never consumes. ``session_topic`` creates such a topic
when a session starts and deletes it when the session ends.

Several sessions on one machine (two developers, a suite and a benchmark)
share the topic, because MinIO's targets are fixed when it starts. So each
session holds a shared ``flock`` on a file named after the broker and the
topic while it runs; at the end only a session that can turn it into an
exclusive lock, i.e. the last one, deletes the topic. A session starting
meanwhile waits for the deletion and creates the topic again, so MinIO's
target (which names the topic, not its id) keeps working.

Before deleting, the last session waits until the topic has been quiet for a
few seconds: MinIO with a queue dir sends queued events only every 3 s, and
an event sent after the deletion would make Kafka create the topic again
(auto.create.topics.enable), leaving it behind.
"""

import fcntl
import hashlib
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# The topic `make run` consumes (services.sh env exports it): never ours to delete.
DEV_TOPIC_DEFAULT = "minio-events"
# MinIO's queue dir is sent every 3 s (retryInterval in its internal/store);
# quiet for longer than that, it holds nothing more for the topic.
QUIET_S = 4.0


def lock_path(*, topic: str, bootstrap: str) -> str:
    """The lock file of ``topic`` on the cluster at ``bootstrap`` (one per machine)."""
    digest = hashlib.sha256(f"{bootstrap}/{topic}".encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"pipelens-topic-{digest}.lock")


def topic_create(admin: AdminClient, *, topic: str, partitions: int = 4, timeout: float = 30.0) -> None:
    """Create ``topic`` unless it exists; returns once the broker lists it."""
    deadline = time.monotonic() + timeout
    while True:
        if topic in admin.list_topics(timeout=10).topics:
            return
        try:
            admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
                topic
            ].result(15)
        except KafkaException as exc:
            # Exists (MinIO auto-created it), or a deletion is still finishing: look again.
            if exc.args[0].code() not in (KafkaError.TOPIC_ALREADY_EXISTS, KafkaError.UNKNOWN_TOPIC_OR_PART):
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"topic {topic} not listed {timeout:.0f} s after creating it")
        time.sleep(0.2)


def topic_wait_quiet(*, topic: str, bootstrap: str, quiet_s: float = QUIET_S, timeout: float = 30.0) -> None:
    """Return once no message has reached ``topic`` for ``quiet_s`` (or after ``timeout``)."""
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "pipelens-session-topics", "log_level": 0})
    try:
        partitions = probe.list_topics(topic, timeout=10).topics[topic].partitions

        def ends() -> list[int]:
            return [probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions]

        deadline = time.monotonic() + timeout
        last, since = ends(), time.monotonic()
        while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
            time.sleep(0.25)
            now = ends()
            if now != last:
                last, since = now, time.monotonic()
    finally:
        probe.close()


def topic_delete(admin: AdminClient, *, topic: str) -> None:
    """Delete ``topic``; one that is already gone is fine."""
    try:
        admin.delete_topics([topic], operation_timeout=15)[topic].result(30)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
            raise


@contextmanager
def session_topic(
    topic: str, *, bootstrap: str, partitions: int = 4, quiet_s: float = QUIET_S
) -> Iterator[str]:
    """``topic`` exists for the ``with`` block; the last session to leave deletes it."""
    if topic == os.environ.get("MINIO_KAFKA_TOPIC", DEV_TOPIC_DEFAULT):
        raise ValueError(
            f"{topic} is the topic `make run` consumes; tests and benchmarks need one of "
            "their own (MINIO_TEST_KAFKA_TOPIC, MINIO_BENCH_KAFKA_TOPIC)"
        )
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    with open(lock_path(topic=topic, bootstrap=bootstrap), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            topic_create(admin, topic=topic, partitions=partitions)
            yield topic
        finally:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another session still uses the topic; it deletes it when it leaves
            else:
                topic_wait_quiet(topic=topic, bootstrap=bootstrap, quiet_s=quiet_s)
                topic_delete(admin, topic=topic)
