"""MinIO's Kafka notification targets, managed through its admin API (docs/operations.md).

A bucket publishes to a topic through a target (``notify_kafka:<id>``, ARN
``arn:minio:sqs::<id>:kafka``) that names the brokers and the topic. MinIO
(the release pinned in deploy/local/minio.sh, read in its source):

- checks that the brokers answer before it stores a target
  (``validateConfig`` → ``notify.TestSubSysNotificationTargets``);
- loads targets only when it starts: ``notify_kafka`` is not one of its
  dynamic sub-systems (``config.SubSystemsDynamic`` in internal/config/config.go),
  so ``SetConfigKVHandler`` saves it and applies nothing. A new or changed
  target needs a restart (``store_restart``);
- lets environment variables (``MINIO_NOTIFY_KAFKA_*_<id>``) override the
  stored values of the same id: setting such a target through the API is
  accepted and changes nothing. Pipelens refuses it instead.
"""

from __future__ import annotations

import re
import time

from django.conf import settings

from runs.brokers import BrokerError, topic_name_check
from runs.models import Bucket
from runs.storage import (
    StoreAdminError,
    kafka_target_remove,
    kafka_target_write,
    kafka_targets_read,
    store_kind,
)
from runs.storage import store_restart as _store_restart

# Environment variable names carry the id, so keep to what a variable name holds.
_TARGET_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_BROKERS = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}(,[A-Za-z0-9.\-\[\]:]+:\d{1,5})*$")


class TargetError(Exception):
    """A target change that was refused; nothing was stored (the message says why)."""


def _targets(store: str):
    if store_kind(store) != "minio":
        raise TargetError(f"Object store {store!r} is not MinIO: it has no notification targets.")
    try:
        return {t.id: t for t in kafka_targets_read(store=store)}
    except StoreAdminError as exc:
        raise TargetError(str(exc)) from exc


def store_target_set(*, store: str, target_id: str, topic: str, brokers: str = "") -> str:
    """Store target ``target_id`` publishing to ``topic`` on ``brokers`` (the
    KAFKA_BOOTSTRAP_SERVERS setting by default) in MinIO store ``store``. Returns its ARN;
    MinIO uses it after its next restart."""
    if not _TARGET_ID.match(target_id or ""):
        raise TargetError("A target id is 1 to 64 letters, digits or '_' (it becomes part of an ARN).")
    try:
        topic_name_check(topic)
    except BrokerError as exc:
        raise TargetError(str(exc)) from exc
    brokers = brokers or settings.KAFKA_BOOTSTRAP_SERVERS
    if not _BROKERS.match(brokers):
        raise TargetError(f"{brokers[:120]!r} is not a list of host:port brokers separated by commas.")
    existing = _targets(store).get(target_id)
    if existing is not None and existing.from_env:
        raise TargetError(
            f"Target {target_id} is defined by MinIO's environment (MINIO_NOTIFY_KAFKA_*_{target_id}); "
            "MinIO would store the change and keep using the environment's values. Use another id."
        )
    try:
        kafka_target_write(store=store, target_id=target_id, topic=topic, brokers=brokers)
    except StoreAdminError as exc:
        raise TargetError(str(exc)) from exc
    return f"arn:minio:sqs::{target_id}:kafka"


def store_target_remove(*, store: str, target_id: str) -> None:
    """Remove a target set through the API. One defined by the environment, or still named
    by a bucket's notification, is kept."""
    target = _targets(store).get(target_id)
    if target is not None and target.from_env:
        raise TargetError(f"Target {target_id} is defined by MinIO's environment; it cannot be removed here.")
    arn = f"arn:minio:sqs::{target_id}:kafka"
    users = list(Bucket.objects.filter(store=store, notify_arn=arn).values_list("name", flat=True))
    if arn == settings.MINIO_NOTIFY_ARN:
        users.append("(every bucket without a target of its own: MINIO_NOTIFY_ARN)")
    if users:
        raise TargetError(f"Buckets {', '.join(users)} publish through {arn}; move them first.")
    try:
        kafka_target_remove(store=store, target_id=target_id)
    except StoreAdminError as exc:
        raise TargetError(str(exc)) from exc


def store_restart(*, store: str, expect_target: str = "", timeout_s: float = 60.0) -> None:
    """Restart MinIO store ``store`` so that it loads the targets stored since it started, and
    wait until its admin API answers again (and lists ``expect_target``, when given).
    Uploads during the restart (about a second locally) fail and are retried by clients."""
    if store_kind(store) != "minio":
        raise TargetError(f"Object store {store!r} is not MinIO.")
    try:
        _store_restart(store=store)
    except StoreAdminError as exc:
        raise TargetError(str(exc)) from exc
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ids = {t.id for t in kafka_targets_read(store=store)}
            if not expect_target or expect_target in ids:
                return
        except StoreAdminError:
            pass  # still restarting
        if time.monotonic() > deadline:
            raise TargetError(
                f"Object store {store!r} did not come back"
                + (f" with target {expect_target}" if expect_target else "")
                + f" within {timeout_s:.0f} s."
            )
        time.sleep(0.1)
