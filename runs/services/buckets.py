"""Buckets and topics: registration and event notification set-up.

A store's ``kind`` (OBJECT_STORES setting) decides how its events reach
Kafka: a MinIO bucket gets a notification through the S3 API; SeaweedFS has
none, its filer publishes every change to one topic named in its own
``notification.toml`` (docs/stores.md), so a SeaweedFS bucket is registered
on that topic (message format ``seaweedfs_filer``) with nothing to set.

``bucket_register`` (setup_demo, tests) records a failure on the row;
the operations console's ``bucket_create`` / ``bucket_update`` /
``bucket_delete`` are all or nothing: what the store refuses is raised as
``BucketError`` and leaves the store and the row as they were
(docs/operations.md). Pipelens' rule in a bucket's notification has the id
``pipelens``; other targets' rules are always kept.
"""

from collections.abc import Sequence

from django.conf import settings
from django.db import IntegrityError, transaction
from minio.error import MinioException
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig, SuffixFilterRule

from runs.models import Bucket, KafkaTopic
from runs.selectors.buckets import PIPELENS_RULE_ID, bucket_expected_rule, filter_value_problem
from runs.storage import (
    KafkaTarget,
    StoreAdminError,
    bucket_notification_read,
    kafka_targets_read,
    minio_client,
    store_error_text,
    store_kind,
)

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
    """Point the MinIO bucket's notifications at its Kafka target (``notify_arn``, or the
    MINIO_NOTIFY_ARN setting), creating the bucket if missing, and record the outcome on
    the row. A SeaweedFS bucket is only created if missing: its filer publishes every change.
    Rules of other targets on the bucket are kept (docs/operations.md)."""
    client = minio_client(bucket.store)
    if store_kind(bucket.store) == SEAWEEDFS:
        return _seaweedfs_bucket_ensure(bucket, client)
    try:
        if not client.bucket_exists(bucket.name):
            client.make_bucket(bucket.name)
        _notification_apply(bucket)
    except (MinioException, OSError, ValueError, StoreAdminError) as exc:
        return _notification_record(bucket, error=exc)
    return _notification_record(bucket, status=Bucket.NotificationStatus.CONFIGURED)


def _notification_apply(bucket: Bucket) -> None:
    """Write Pipelens' rule for ``bucket`` into the store, keeping other targets' rules."""
    rule = bucket_expected_rule(bucket=bucket)
    for what, value in (("prefix", rule.prefix), ("suffix", rule.suffix)):
        problem = filter_value_problem(value)
        if problem:
            raise ValueError(f"The {what} filter {value[:80]!r} {problem}.")
    ours = QueueConfig(
        queue=rule.arn,
        events=list(rule.events),
        config_id=PIPELENS_RULE_ID,
        prefix_filter_rule=PrefixFilterRule(rule.prefix) if rule.prefix else None,
        suffix_filter_rule=SuffixFilterRule(rule.suffix) if rule.suffix else None,
    )
    _notification_write(store=bucket.store, name=bucket.name, ours=ours, arn=rule.arn)


def _notification_write(*, store: str, name: str, ours: QueueConfig | None, arn: str = "") -> None:
    """Replace Pipelens' rule in bucket ``name``'s notification by ``ours`` (None: remove it);
    rules of other targets are written back as the store held them."""
    current = bucket_notification_read(store=store, bucket=name)
    others = [q for q in current.queue_config_list if q.config_id != PIPELENS_RULE_ID and q.queue != arn]
    minio_client(store).set_bucket_notification(
        name,
        NotificationConfig(
            cloud_func_config_list=current.cloud_func_config_list,
            queue_config_list=[*others, *([ours] if ours is not None else [])],
            topic_config_list=current.topic_config_list,
        ),
    )


def _notification_withdraw(*, bucket: Bucket, name: str | None = None) -> None:
    """Remove Pipelens' rule from the store's bucket (``name``, default ``bucket.name``),
    keeping the bucket, its objects and other targets' rules. A bucket gone from the
    store has nothing to withdraw."""
    name = name or bucket.name
    if store_kind(bucket.store) == SEAWEEDFS or not minio_client(bucket.store).bucket_exists(name):
        return
    _notification_write(store=bucket.store, name=name, ours=None, arn=bucket_expected_rule(bucket=bucket).arn)


class BucketError(Exception):
    """A bucket change the store (or Pipelens) refused; nothing was left half-done."""


def bucket_target_check(*, store: str, arn: str, topic: KafkaTopic | None) -> KafkaTarget:
    """The target ``arn`` of MinIO store ``store``; ``BucketError`` unless the store has loaded
    it and it publishes to ``topic``: a bucket wired to another topic's target would feed a
    topic Pipelens does not read for it."""
    try:
        targets = {t.arn: t for t in kafka_targets_read(store=store)}
    except StoreAdminError as exc:
        raise BucketError(str(exc)) from exc
    target = targets.get(arn)
    if target is None:
        loaded = ", ".join(f"{t.arn} → {t.topic}" for t in targets.values()) or "none"
        raise BucketError(
            f"Object store {store!r} has no notification target {arn} (loaded targets: {loaded}). "
            "Add one under MinIO targets; MinIO loads a new target when it restarts."
        )
    if topic is not None and target.topic != topic.name:
        raise BucketError(f"Target {arn} publishes to topic {target.topic!r}, not to {topic.name!r}.")
    return target


def _topic_for(*, store: str, arn: str, topic: KafkaTopic | None) -> KafkaTopic:
    """The topic a bucket of ``store`` publishes to: for SeaweedFS the filer's (one format only);
    for MinIO the one given, checked against the target, or else the target's own topic."""
    if store_kind(store) == SEAWEEDFS:
        filer = settings.SEAWEEDFS_KAFKA_TOPIC
        if topic is not None and (
            topic.message_format != KafkaTopic.MessageFormat.SEAWEEDFS_FILER or topic.name != filer
        ):
            raise BucketError(
                f"A SeaweedFS bucket's events come from the filer's topic {filer!r} "
                "(SEAWEEDFS_KAFKA_TOPIC, format SeaweedFS filer notification); leave the topic empty."
            )
        return topic or _topic_row(name=filer, message_format=KafkaTopic.MessageFormat.SEAWEEDFS_FILER)
    if topic is not None and topic.message_format != KafkaTopic.MessageFormat.S3:
        raise BucketError(
            f"Topic {topic.name!r} carries {topic.get_message_format_display()} messages, not MinIO's."
        )
    target = bucket_target_check(store=store, arn=arn, topic=topic)
    return topic or _topic_row(name=target.topic, message_format=KafkaTopic.MessageFormat.S3)


def _topic_row(*, name: str, message_format: str) -> KafkaTopic:
    """The row of topic ``name``, or a new one left unsaved: it is saved with the bucket,
    so a refused registration leaves no row behind."""
    topic = KafkaTopic.objects.filter(name=name).first()
    if topic is None:
        return KafkaTopic(name=name, message_format=message_format)
    if topic.message_format != message_format:
        raise BucketError(f"Topic {name!r} carries {topic.get_message_format_display()} messages.")
    return topic


def bucket_create(
    *,
    name: str,
    store: str,
    topic: KafkaTopic | None,
    layouts: Sequence[str],
    prefix_filter: str = "",
    suffix_filter: str = "",
    event_names: Sequence[str] = (),
    notify_arn: str = "",
) -> Bucket:
    """Register a bucket from the console: create it in the store if missing, apply its
    notification, then save the row. If any step is refused, what this call made in the
    store is removed again and no row is saved (``BucketError`` says why)."""
    if Bucket.objects.filter(name=name).exists():
        raise BucketError(f"Pipelens already has a bucket named {name!r}.")
    bucket = Bucket(
        name=name,
        store=store,
        topic=topic,
        layouts=list(layouts),
        prefix_filter=prefix_filter,
        suffix_filter=suffix_filter,
        event_names=list(event_names),
        notify_arn=notify_arn,
    )
    client = minio_client(store)
    kind = store_kind(store)
    bucket.topic = _topic_for(store=store, arn=bucket_expected_rule(bucket=bucket).arn, topic=topic)
    made = False
    try:
        if not client.bucket_exists(name):
            client.make_bucket(name)
            made = True
        if kind != SEAWEEDFS:
            _notification_apply(bucket)
        bucket.notification_status = (
            Bucket.NotificationStatus.IN_FILER_CONFIG
            if kind == SEAWEEDFS
            else Bucket.NotificationStatus.CONFIGURED
        )
        with transaction.atomic():
            if bucket.topic.pk is None:
                bucket.topic.save()
                bucket.topic = bucket.topic  # re-bind the saved row's id to the foreign key
            bucket.save()
    except (MinioException, OSError, ValueError, StoreAdminError, IntegrityError) as exc:
        if made:
            _bucket_remove_quietly(client, name)
        if isinstance(exc, IntegrityError):
            raise BucketError(f"Pipelens already has a bucket named {name!r}.") from exc
        text = str(exc) if isinstance(exc, ValueError | StoreAdminError) else store_error_text(store, exc)
        raise BucketError(text) from exc
    return bucket


def _bucket_remove_quietly(client, name: str) -> None:
    # Only a bucket this call created, still empty: never anything else in the store.
    try:
        client.remove_bucket(name)
    except (MinioException, OSError, ValueError):
        pass


def bucket_update(
    *,
    bucket: Bucket,
    topic: KafkaTopic | None,
    layouts: Sequence[str],
    prefix_filter: str = "",
    suffix_filter: str = "",
    event_names: Sequence[str] = (),
    notify_arn: str = "",
    name: str | None = None,
) -> Bucket:
    """Change a bucket's wiring: the store's notification first, then the row. A change the
    store refuses leaves the row and the store's configuration as they were. The name
    changes only while no events exist (runs and grants are keyed by it)."""
    stored = Bucket.objects.get(pk=bucket.pk)
    renamed_from = ""
    if name is not None and name != stored.name:
        if stored.last_event_at is not None or stored.runs.exists():
            raise BucketError("The bucket's name is fixed once events exist.")
        renamed_from, stored.name = stored.name, name
    stored.topic, stored.layouts = topic, list(layouts)
    stored.prefix_filter, stored.suffix_filter = prefix_filter, suffix_filter
    stored.event_names, stored.notify_arn = list(event_names), notify_arn
    stored.topic = _topic_for(store=stored.store, arn=bucket_expected_rule(bucket=stored).arn, topic=topic)
    if store_kind(stored.store) != SEAWEEDFS:
        try:
            client = minio_client(stored.store)
            if not client.bucket_exists(stored.name):
                client.make_bucket(stored.name)
            _notification_apply(stored)
        except (MinioException, OSError, ValueError, StoreAdminError) as exc:
            text = (
                str(exc)
                if isinstance(exc, ValueError | StoreAdminError)
                else store_error_text(stored.store, exc)
            )
            raise BucketError(text) from exc
        stored.notification_status, stored.notification_error = Bucket.NotificationStatus.CONFIGURED, ""
    with transaction.atomic():
        if stored.topic.pk is None:
            stored.topic.save()
            stored.topic = stored.topic
        stored.save()
    if renamed_from:
        # The old bucket stops publishing into Pipelens' topic (unknown-bucket errors otherwise).
        old = Bucket.objects.get(pk=stored.pk)
        old.name = renamed_from
        try:
            _notification_withdraw(bucket=old)
        except (MinioException, OSError, ValueError, StoreAdminError):
            pass  # the rename stands; the old bucket's page is gone, its events become ingest errors
    return stored


def bucket_delete(*, bucket: Bucket) -> None:
    """Forget a bucket: withdraw Pipelens' rule from its notification in the store (the bucket,
    its objects and other targets' rules stay), then delete the row with its runs and grants.
    If the store cannot be changed, the row stays too (``BucketError``)."""
    try:
        _notification_withdraw(bucket=bucket)
    except (MinioException, OSError, ValueError, StoreAdminError) as exc:
        text = (
            str(exc) if isinstance(exc, ValueError | StoreAdminError) else store_error_text(bucket.store, exc)
        )
        raise BucketError(f"Not deleted: the store still publishes this bucket's events ({text}).") from exc
    with transaction.atomic():
        bucket.delete()


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
