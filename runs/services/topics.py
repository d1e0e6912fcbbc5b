"""Topics: a ``KafkaTopic`` row and its topic on the broker, changed together (docs/operations.md).

Each service asks the broker first and writes the row only when the broker
did what was asked, so a refused change leaves both as they were. Deleting
a row keeps the topic and its messages on the broker unless the caller asks
for the broker's topic to go too (the console asks the operator to type the
topic's name for that).
"""

from __future__ import annotations

from django.db import IntegrityError, transaction

from runs.brokers import (
    BrokerError,
    TopicExists,
    TopicMissing,
    bootstrap_for,
    broker_partition_count,
    broker_topic_create,
    broker_topic_delete,
    broker_topic_partitions_raise,
    broker_topic_retention_set,
    topic_name_check,
)
from runs.models import KafkaTopic


class TopicError(Exception):
    """A topic change that was refused; nothing was changed (the message says why)."""


def topic_create(
    *,
    name: str,
    partitions: int = 4,
    replication_factor: int = 1,
    retention_ms: int | None = None,
    message_format: str = KafkaTopic.MessageFormat.S3,
    bootstrap_servers: str = "",
    enabled: bool = True,
    notes: str = "",
) -> KafkaTopic:
    """Create ``name`` on the broker, then its row. A topic already on the broker (an
    existing installation's) is adopted as it is: its row records the broker's partition
    count, and its retention is left alone unless one is given."""
    bootstrap = bootstrap_for(bootstrap_servers)
    if KafkaTopic.objects.filter(name=name).exists():
        raise TopicError(f"Pipelens already has a topic named {name!r}.")
    created = False
    try:
        broker_topic_create(
            name=name,
            partitions=partitions,
            replication_factor=replication_factor,
            retention_ms=retention_ms,
            bootstrap=bootstrap,
        )
        created = True
    except TopicExists:
        partitions = broker_partition_count(name=name, bootstrap=bootstrap)
        if retention_ms is not None:
            broker_topic_retention_set(name=name, retention_ms=retention_ms, bootstrap=bootstrap)
    except BrokerError as exc:
        raise TopicError(str(exc)) from exc
    try:
        with transaction.atomic():
            return KafkaTopic.objects.create(
                name=name,
                partitions=partitions,
                replication_factor=replication_factor,
                retention_ms=retention_ms,
                message_format=message_format,
                bootstrap_servers=bootstrap_servers,
                enabled=enabled,
                notes=notes,
            )
    except IntegrityError as exc:  # created meanwhile by another request
        if created:
            broker_topic_delete(name=name, bootstrap=bootstrap)
        raise TopicError(f"Pipelens already has a topic named {name!r}.") from exc


def topic_update(
    *,
    topic: KafkaTopic,
    partitions: int,
    retention_ms: int | None,
    enabled: bool,
    message_format: str,
    notes: str = "",
) -> KafkaTopic:
    """Change a topic: retention on the broker, then the partition count (only up: Kafka
    cannot remove partitions), then the row. If raising the partitions is refused, the
    retention goes back to what it was. A topic missing on the broker is created."""
    before = KafkaTopic.objects.get(pk=topic.pk)
    bootstrap = bootstrap_for(before.bootstrap_servers)
    try:
        try:
            have = broker_partition_count(name=before.name, bootstrap=bootstrap)
        except TopicMissing:
            # A row without its topic (registered before the console, or deleted on the
            # broker behind Pipelens' back): saving it creates the topic as the row says.
            broker_topic_create(
                name=before.name,
                partitions=partitions,
                replication_factor=before.replication_factor,
                retention_ms=retention_ms,
                bootstrap=bootstrap,
            )
            have, before.retention_ms = partitions, retention_ms
        if partitions < have:
            raise TopicError(
                f"Topic {before.name!r} has {have} partitions on the broker; Kafka cannot remove "
                "partitions (a smaller count needs a new topic)."
            )
        if retention_ms != before.retention_ms:
            broker_topic_retention_set(name=before.name, retention_ms=retention_ms, bootstrap=bootstrap)
        if partitions > have:
            try:
                broker_topic_partitions_raise(name=before.name, partitions=partitions, bootstrap=bootstrap)
            except BrokerError:
                if retention_ms != before.retention_ms:
                    broker_topic_retention_set(
                        name=before.name, retention_ms=before.retention_ms, bootstrap=bootstrap
                    )
                raise
    except BrokerError as exc:
        raise TopicError(str(exc)) from exc
    before.partitions = partitions
    before.retention_ms = retention_ms
    before.enabled = enabled
    before.message_format = message_format
    before.notes = notes
    before.save(
        update_fields=["partitions", "retention_ms", "enabled", "message_format", "notes", "updated_at"]
    )
    return before


@transaction.atomic
def topic_delete(*, topic: KafkaTopic, delete_on_broker: bool = False) -> None:
    """Delete the row; with ``delete_on_broker`` also the broker's topic and every message
    in it. A topic that buckets still publish to is kept (move the buckets first)."""
    names = list(topic.buckets.values_list("name", flat=True))
    if names:
        raise TopicError(
            f"Buckets {', '.join(names)} publish to {topic.name!r}; move them to another topic first."
        )
    name, bootstrap = topic.name, bootstrap_for(topic.bootstrap_servers)
    topic.delete()
    if delete_on_broker:
        try:
            broker_topic_delete(name=name, bootstrap=bootstrap)
        except BrokerError as exc:
            raise TopicError(str(exc)) from exc  # the row's deletion rolls back with it


def topic_name_validate(name: str) -> None:
    """``TopicError`` unless Kafka would accept ``name`` (checked before anything is asked)."""
    try:
        topic_name_check(name)
    except BrokerError as exc:
        raise TopicError(str(exc)) from exc
