"""Buckets and topics: registration and event notification set-up.

A store's ``kind`` (OBJECT_STORES setting) decides how its events reach
Kafka: a MinIO bucket gets a notification through the S3 API; SeaweedFS has
none, its filer publishes every change to one topic named in its own
``notification.toml`` (docs/stores.md), so a SeaweedFS bucket is registered
on that topic (message format ``seaweedfs_filer``) with nothing to set.
"""

from collections.abc import Sequence

from django.conf import settings
from minio.error import MinioException
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig, SuffixFilterRule

from runs.models import Bucket, KafkaTopic
from runs.storage import minio_client, store_kind

# What MinIO should publish when a bucket names no event filter: content
# changes only (accessed events are noise; docs/inputs.md).
DEFAULT_NOTIFY_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


SEAWEEDFS = "seaweedfs"


def topic_ensure(
    *, name: str, partitions: int = 4, message_format: str = KafkaTopic.MessageFormat.S3
) -> KafkaTopic:
    """The enabled KafkaTopic row called ``name``, created if missing. A topic carries
    one message format: asking for another one than the row has is an error."""
    topic, _ = KafkaTopic.objects.get_or_create(
        name=name, defaults={"partitions": partitions, "message_format": message_format}
    )
    if topic.message_format != message_format:
        raise ValueError(
            f"topic {name!r} carries {topic.get_message_format_display()} messages, not {message_format!r}"
        )
    return topic


def bucket_register(
    *,
    name: str,
    topic_name: str | None = None,
    layouts: Sequence[str] | None = None,
    store: str = "default",
) -> Bucket:
    """Register a bucket of object store ``store``: its row, the bucket if missing, and
    its event notification (MinIO) or the filer's topic (SeaweedFS).

    The notification status and any error are recorded on the row, so the
    admin shows why a bucket publishes nothing; the row is saved either way.
    A registered bucket named again with another store moves to that store
    (and its topic), e.g. ``make run`` switched between MinIO and SeaweedFS.
    """
    if store_kind(store) == SEAWEEDFS:
        topic = topic_ensure(
            name=topic_name or settings.SEAWEEDFS_KAFKA_TOPIC,
            message_format=KafkaTopic.MessageFormat.SEAWEEDFS_FILER,
        )
    else:
        topic = topic_ensure(name=topic_name or settings.MINIO_KAFKA_TOPIC)
    bucket, created = Bucket.objects.get_or_create(
        name=name,
        defaults={"topic": topic, "store": store, **({"layouts": list(layouts)} if layouts else {})},
    )
    if not created and (bucket.topic_id is None or bucket.store != store):
        bucket.topic, bucket.store = topic, store
        bucket.save(update_fields=["topic", "store"])
    bucket_notification_configure(bucket=bucket)
    return bucket


def bucket_notification_configure(*, bucket: Bucket) -> Bucket:
    """Point the MinIO bucket's notifications at Pipelens' Kafka target (ARN setting).
    A SeaweedFS bucket is only created if missing: its filer publishes every change."""
    client = minio_client(bucket.store)
    if store_kind(bucket.store) == SEAWEEDFS:
        return _seaweedfs_bucket_ensure(bucket, client)
    try:
        if not client.bucket_exists(bucket.name):
            client.make_bucket(bucket.name)
        prefix = PrefixFilterRule(bucket.prefix_filter) if bucket.prefix_filter else None
        suffix = SuffixFilterRule(bucket.suffix_filter) if bucket.suffix_filter else None
        queue = QueueConfig(
            queue=settings.MINIO_NOTIFY_ARN,
            events=bucket.event_names or DEFAULT_NOTIFY_EVENTS,
            config_id="pipelens",
            prefix_filter_rule=prefix,
            suffix_filter_rule=suffix,
        )
        client.set_bucket_notification(bucket.name, NotificationConfig(queue_config_list=[queue]))
    except (MinioException, OSError, ValueError) as exc:
        return _notification_record(bucket, error=exc)
    return _notification_record(bucket, status=Bucket.NotificationStatus.CONFIGURED)


def _seaweedfs_bucket_ensure(bucket: Bucket, client) -> Bucket:
    try:
        if not client.bucket_exists(bucket.name):
            client.make_bucket(bucket.name)
    except (MinioException, OSError, ValueError) as exc:
        return _notification_record(bucket, error=exc)
    return _notification_record(bucket, status=Bucket.NotificationStatus.IN_FILER_CONFIG)


def _notification_record(bucket: Bucket, *, status: str = "", error: Exception | None = None) -> Bucket:
    """Store the outcome of wiring ``bucket``'s events where the admin shows it: ``status``,
    or failed with ``error``'s text."""
    bucket.notification_status = Bucket.NotificationStatus.FAILED if error else status
    bucket.notification_error = str(error)[:2000] if error else ""
    bucket.save(update_fields=["notification_status", "notification_error"])
    return bucket
