"""Kafka topics Pipelens consumes (read by the consume loop), and their state on the broker
(read by the operations console through ``runs.brokers``; docs/operations.md)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q

from runs.brokers import TopicState, bootstrap_for, broker_topic_state
from runs.models import KafkaTopic


def _enabled(bootstrap_servers: str):
    return KafkaTopic.objects.filter(enabled=True).filter(
        Q(bootstrap_servers="") | Q(bootstrap_servers=bootstrap_servers)
    )


def enabled_topic_names(*, bootstrap_servers: str) -> list[str]:
    """Names of the enabled topics served by ``bootstrap_servers`` (or by the default)."""
    return sorted(_enabled(bootstrap_servers).values_list("name", flat=True))


def enabled_topic_formats(*, bootstrap_servers: str) -> dict[str, str]:
    """Enabled topic name -> its ``message_format`` (``KafkaTopic.MessageFormat`` value)."""
    return dict(sorted(_enabled(bootstrap_servers).values_list("name", "message_format")))


def topic_broker_state(*, topic: KafkaTopic) -> TopicState:
    """``topic``'s partitions, high-water marks and the ingest consumer group's committed
    offsets and lag (KAFKA_CONSUMER_GROUP), as the broker reports them now.
    Raises ``runs.brokers.BrokerError`` when the broker cannot tell."""
    return broker_topic_state(
        name=topic.name, bootstrap=bootstrap_for(topic.bootstrap_servers), group=settings.KAFKA_CONSUMER_GROUP
    )
