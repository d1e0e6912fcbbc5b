"""Kafka client configuration: the one place that builds consumer/producer configs.

See docs/architecture.md. Offsets are committed by hand (after the database
commit), never automatically.
"""

from django.conf import settings


def consumer_config(*, group_id: str | None = None, bootstrap_servers: str | None = None) -> dict:
    """Config for the ingest consumer group."""
    return {
        "bootstrap.servers": bootstrap_servers or settings.KAFKA_BOOTSTRAP_SERVERS,
        "group.id": group_id or settings.KAFKA_CONSUMER_GROUP,
        "client.id": "pipelens-consume-events",
        # At-least-once: offsets are committed only after the batch is stored.
        "enable.auto.commit": False,
        # A new group reads the topic from the start: nothing already
        # published is skipped when Pipelens is installed after MinIO.
        "auto.offset.reset": "earliest",
        # Bound librdkafka's prefetch queue (default 64 MiB per consumer) so
        # the consumer's memory stays flat however far behind it is.
        "queued.max.messages.kbytes": 16384,
        # A consumer stuck on a database outage still polls, so the default
        # poll interval is enough; sessions detect a dead consumer quickly.
        "session.timeout.ms": 15000,
        "topic.metadata.refresh.interval.ms": 10000,
    }


def producer_config(*, bootstrap_servers: str | None = None) -> dict:
    """Config for tools and benchmarks that publish MinIO-shaped messages."""
    return {
        "bootstrap.servers": bootstrap_servers or settings.KAFKA_BOOTSTRAP_SERVERS,
        "linger.ms": 5,
        "acks": "all",
    }


def admin_config(*, bootstrap_servers: str | None = None, timeout_s: float | None = None) -> dict:
    """Config for an AdminClient (readiness checks; topic administration)."""
    config = {"bootstrap.servers": bootstrap_servers or settings.KAFKA_BOOTSTRAP_SERVERS}
    if timeout_s is not None:
        # Give up on a broker that does not answer within the check's budget.
        config["socket.connection.setup.timeout.ms"] = max(int(timeout_s * 1000), 1000)
        config["socket.timeout.ms"] = max(int(timeout_s * 1000), 1000)
    return config
