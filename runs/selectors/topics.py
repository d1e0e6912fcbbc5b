"""Kafka topics Pipelens consumes (read by the consume loop)."""

from __future__ import annotations

from django.db.models import Q

from runs.models import KafkaTopic


def enabled_topic_names(*, bootstrap_servers: str) -> list[str]:
    """Names of the enabled topics served by ``bootstrap_servers`` (or by the default)."""
    rows = KafkaTopic.objects.filter(enabled=True).filter(
        Q(bootstrap_servers="") | Q(bootstrap_servers=bootstrap_servers)
    )
    return sorted(rows.values_list("name", flat=True))
