"""Kafka administration: the one module in ``runs`` that talks to the broker (docs/operations.md).

The operations console creates topics, raises their partition count,
changes their retention and reads their partitions, high-water marks and the
ingest consumer group's committed offsets. The consume loop itself lives in
``streaming`` (which ``runs`` never imports); this module only administers.

Every failure becomes a ``BrokerError`` whose text is shown to the operator
as is: it names the broker and what went wrong, never a credential.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from django.conf import settings

# How long an admin request may take. A broker that is down must give the
# operator an answer in seconds, not librdkafka's default of a minute.
REQUEST_TIMEOUT_S = 8.0

# Kafka's own rule (kafka.common.internals.Topic): legal characters, at most
# 249 of them, and not "." or "..".
_TOPIC_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


class BrokerError(Exception):
    """An admin request the broker refused or could not be asked (the message says which)."""


class TopicExists(BrokerError):
    """The topic is already on the broker."""


class TopicMissing(BrokerError):
    """The topic is not on the broker."""


def topic_name_check(name: str) -> None:
    """Raise ``BrokerError`` unless ``name`` is a topic name Kafka accepts."""
    if not _TOPIC_NAME.match(name or "") or name in (".", ".."):
        raise BrokerError(
            f"{(name or '')[:80]!r} is not a valid Kafka topic name: use 1 to 249 letters, digits, "
            "'.', '_' or '-' (and not '.' or '..')."
        )


def bootstrap_for(servers: str = "") -> str:
    """The brokers a topic row names, or the KAFKA_BOOTSTRAP_SERVERS setting."""
    return servers or settings.KAFKA_BOOTSTRAP_SERVERS


def _admin(bootstrap: str) -> AdminClient:
    # One client per request: a console page is rare, and a cached client for
    # a broker that went away would keep reconnecting in the background.
    return AdminClient(
        {
            "bootstrap.servers": bootstrap,
            "client.id": "pipelens-console",
            "socket.connection.setup.timeout.ms": int(REQUEST_TIMEOUT_S * 1000),
            "socket.timeout.ms": int(REQUEST_TIMEOUT_S * 1000),
            # No reconnect storm against a broker that is down.
            "reconnect.backoff.max.ms": 2000,
        }
    )


def _reachable(admin: AdminClient, bootstrap: str):
    """The cluster metadata, or ``BrokerError`` saying the broker cannot be reached."""
    try:
        return admin.list_topics(timeout=REQUEST_TIMEOUT_S)
    except KafkaException as exc:
        raise BrokerError(f"Kafka at {bootstrap} is not reachable: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0].str()
    return str(exc) or type(exc).__name__


def _wait(future, what: str):
    try:
        return future.result(timeout=REQUEST_TIMEOUT_S * 2)
    except KafkaException as exc:
        error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if error is not None and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            raise TopicExists(f"{what}: the topic already exists on the broker") from exc
        raise BrokerError(f"{what}: {_reason(exc)}") from exc
    except Exception as exc:  # concurrent.futures.TimeoutError, ValueError from librdkafka
        raise BrokerError(f"{what}: {_reason(exc)}") from exc


# --- writes (called by runs/services/topics.py only) -------------------------------


def broker_topic_create(
    *, name: str, partitions: int, replication_factor: int, retention_ms: int | None, bootstrap: str
) -> None:
    """Create ``name`` on the broker; ``TopicExists`` if it is there already."""
    topic_name_check(name)
    admin = _admin(bootstrap)
    _reachable(admin, bootstrap)
    config = {} if retention_ms is None else {"retention.ms": str(retention_ms)}
    new = NewTopic(name, num_partitions=partitions, replication_factor=replication_factor, config=config)
    future = admin.create_topics([new], operation_timeout=REQUEST_TIMEOUT_S)[name]
    _wait(future, f"Kafka at {bootstrap} refused to create topic {name!r}")


def broker_topic_partitions_raise(*, name: str, partitions: int, bootstrap: str) -> None:
    """Raise ``name``'s partition count to ``partitions`` (Kafka cannot lower it)."""
    admin = _admin(bootstrap)
    have = broker_partition_count(name=name, bootstrap=bootstrap, admin=admin)
    if partitions < have:
        raise BrokerError(
            f"Topic {name!r} has {have} partitions; Kafka cannot remove partitions "
            "(a smaller count would need a new topic)."
        )
    if partitions == have:
        return
    future = admin.create_partitions([NewPartitions(name, partitions)], operation_timeout=REQUEST_TIMEOUT_S)
    _wait(future[name], f"Kafka at {bootstrap} refused {partitions} partitions for {name!r}")


def broker_topic_retention_set(*, name: str, retention_ms: int | None, bootstrap: str) -> None:
    """Set ``retention.ms`` of ``name`` (None: back to the broker's default)."""
    admin = _admin(bootstrap)
    _reachable(admin, bootstrap)
    if retention_ms is None:
        entry = ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)
    else:
        entry = ConfigEntry("retention.ms", str(retention_ms), incremental_operation=AlterConfigOpType.SET)
    resource = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[entry])
    futures = admin.incremental_alter_configs([resource])
    _wait(next(iter(futures.values())), f"Kafka at {bootstrap} refused the retention of {name!r}")


def broker_topic_delete(*, name: str, bootstrap: str) -> None:
    """Delete ``name`` and every message in it on the broker."""
    admin = _admin(bootstrap)
    _reachable(admin, bootstrap)
    future = admin.delete_topics([name], operation_timeout=REQUEST_TIMEOUT_S)[name]
    _wait(future, f"Kafka at {bootstrap} refused to delete {name!r}")


# --- reads -----------------------------------------------------------------------


def broker_partition_count(*, name: str, bootstrap: str, admin: AdminClient | None = None) -> int:
    """How many partitions ``name`` has on the broker; ``BrokerError`` if it is not there."""
    admin = admin or _admin(bootstrap)
    meta = _reachable(admin, bootstrap)
    topic = meta.topics.get(name)
    if topic is None or not topic.partitions:
        raise TopicMissing(f"Topic {name!r} does not exist on Kafka at {bootstrap}.")
    return len(topic.partitions)


def broker_topic_exists(*, name: str, bootstrap: str) -> bool:
    meta = _reachable(_admin(bootstrap), bootstrap)
    topic = meta.topics.get(name)
    return topic is not None and bool(topic.partitions)


@dataclass(frozen=True)
class PartitionState:
    """One partition as the broker reports it, with the consumer group's position."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    low: int  # first offset still kept
    high: int  # high-water mark: the offset the next message gets
    committed: int | None  # the group's committed offset; None if it committed none

    @property
    def lag(self) -> int:
        """Messages the group has yet to read. With nothing committed, the group starts
        from the earliest kept offset (auto.offset.reset=earliest, kafka_config.py)."""
        start = self.committed if self.committed is not None else self.low
        return max(self.high - max(start, self.low), 0)


@dataclass(frozen=True)
class TopicState:
    name: str
    bootstrap: str
    group: str
    partitions: tuple[PartitionState, ...]
    retention_ms: str  # as the broker says it ("-1", "604800000", …)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


def broker_topic_state(*, name: str, bootstrap: str, group: str) -> TopicState:
    """Partitions, offsets and ``group``'s lag of ``name``, read from the broker."""
    admin = _admin(bootstrap)
    meta = _reachable(admin, bootstrap)
    topic = meta.topics.get(name)
    if topic is None or not topic.partitions:
        raise TopicMissing(f"Topic {name!r} does not exist on Kafka at {bootstrap}.")
    numbers = sorted(topic.partitions)
    tps = [TopicPartition(name, p) for p in numbers]
    lows = _offsets(admin, tps, OffsetSpec.earliest(), bootstrap)
    highs = _offsets(admin, tps, OffsetSpec.latest(), bootstrap)
    committed = _committed(admin, group, tps, bootstrap)
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    configs = _wait(admin.describe_configs([resource])[resource], f"Kafka at {bootstrap}: topic config")
    retention = configs.get("retention.ms")
    return TopicState(
        name=name,
        bootstrap=bootstrap,
        group=group,
        retention_ms=retention.value if retention is not None else "",
        partitions=tuple(
            PartitionState(
                partition=p,
                leader=topic.partitions[p].leader,
                replicas=tuple(topic.partitions[p].replicas),
                low=lows[p],
                high=highs[p],
                committed=committed.get(p),
            )
            for p in numbers
        ),
    )


def _offsets(admin: AdminClient, tps: list[TopicPartition], spec, bootstrap: str) -> dict[int, int]:
    futures = admin.list_offsets({tp: spec for tp in tps}, request_timeout=REQUEST_TIMEOUT_S)
    return {tp.partition: _wait(f, f"Kafka at {bootstrap}: offsets").offset for tp, f in futures.items()}


def _committed(admin: AdminClient, group: str, tps: list[TopicPartition], bootstrap: str) -> dict[int, int]:
    request = [ConsumerGroupTopicPartitions(group, tps)]
    future = admin.list_consumer_group_offsets(request, request_timeout=REQUEST_TIMEOUT_S)[group]
    result = _wait(future, f"Kafka at {bootstrap}: offsets of group {group!r}")
    # A partition the group never committed comes back with a negative offset.
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}
