"""Buckets and topics: registration and MinIO event notification set-up."""

from collections.abc import Sequence

from django.conf import settings
from minio.error import MinioException
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig, SuffixFilterRule

from runs.models import Bucket, KafkaTopic
from runs.storage import minio_client

# What MinIO should publish when a bucket names no event filter: content
# changes only (accessed events are noise; docs/inputs.md).
DEFAULT_NOTIFY_EVENTS = ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]


def topic_ensure(*, name: str, partitions: int = 4) -> KafkaTopic:
    """The enabled KafkaTopic row called ``name``, created if missing."""
    topic, _ = KafkaTopic.objects.get_or_create(name=name, defaults={"partitions": partitions})
    return topic


def bucket_register(
    *, name: str, topic_name: str | None = None, layouts: Sequence[str] | None = None
) -> Bucket:
    """Register a bucket: its row, the MinIO bucket if missing, and its event notification.

    The notification status and any error are recorded on the row, so the
    admin shows why a bucket publishes nothing; the row is saved either way.
    """
    topic = topic_ensure(name=topic_name or settings.MINIO_KAFKA_TOPIC)
    bucket, created = Bucket.objects.get_or_create(
        name=name, defaults={"topic": topic, **({"layouts": list(layouts)} if layouts else {})}
    )
    if not created and bucket.topic_id is None:
        bucket.topic = topic
        bucket.save(update_fields=["topic"])
    bucket_notification_configure(bucket=bucket)
    return bucket


def bucket_notification_configure(*, bucket: Bucket) -> Bucket:
    """Point the MinIO bucket's notifications at Pipelens' Kafka target (ARN setting)."""
    client = minio_client(bucket.store)
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
        bucket.notification_status = Bucket.NotificationStatus.FAILED
        bucket.notification_error = str(exc)[:2000]
    else:
        bucket.notification_status = Bucket.NotificationStatus.CONFIGURED
        bucket.notification_error = ""
    bucket.save(update_fields=["notification_status", "notification_error"])
    return bucket
