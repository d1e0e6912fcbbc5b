"""Factories for test data. ``object_event`` builds parsed events for service tests."""

import itertools
from datetime import UTC, datetime, timedelta

import factory

from runs.events import EventAction, ObjectEvent
from runs.models import Bucket, KafkaTopic

_offsets = itertools.count(1)
BASE_TIME = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


class KafkaTopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KafkaTopic
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"topic-{n}")


class BucketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Bucket

    name = factory.Sequence(lambda n: f"bucket-{n}")
    topic = factory.SubFactory(KafkaTopicFactory)


def object_event(
    bucket: str,
    key: str,
    *,
    action: EventAction = EventAction.CREATED,
    seconds: float = 0,
    etag: str = "etag",
    size: int | None = 10,
    content_type: str = "text/plain",
    topic: str = "minio-events",
    partition: int = 0,
    offset: int | None = None,
) -> ObjectEvent:
    """An event ``seconds`` after BASE_TIME; its order follows its time, as MinIO's sequencer does."""
    at = BASE_TIME + timedelta(seconds=seconds)
    order = int(at.timestamp() * 1_000_000) * 1000
    removed = action == EventAction.REMOVED
    name = "s3:ObjectRemoved:Delete" if removed else "s3:ObjectCreated:Put"
    return ObjectEvent(
        bucket=bucket,
        key=key,
        action=action,
        event_name=name,
        event_time=at,
        order=order,
        size=None if removed else size,
        etag="" if removed else etag,
        content_type="" if removed else content_type,
        sequencer=f"{order:X}",
        topic=topic,
        partition=partition,
        offset=next(_offsets) if offset is None else offset,
    )
