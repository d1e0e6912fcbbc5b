"""Kafka topics Pipelens consumes (read by the consume loop)."""

from __future__ import annotations

from django.db.models import Q

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
