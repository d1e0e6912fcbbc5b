"""What a bucket's notification should be, what the store holds, and the drift between them
(docs/operations.md). The store is read through ``runs.storage`` only."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from runs.models import Bucket, BucketSweep, Probe
from runs.storage import (
    KafkaTarget,
    StoreAdminError,
    bucket_notification_read,
    kafka_targets_read,
    store_kind,
)

# The id of Pipelens' rule in a bucket's notification configuration; rules with
# other ids (another system's) are left alone when Pipelens applies its own.
PIPELENS_RULE_ID = "pipelens"

# What MinIO should publish when a bucket names no event filter: content
# changes only (accessed events are noise; docs/inputs.md).
DEFAULT_NOTIFY_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")


@dataclass(frozen=True)
class Rule:
    """One queue rule of a bucket's notification: target ARN, events, key filters."""

    arn: str
    events: tuple[str, ...]
    prefix: str = ""
    suffix: str = ""
    rule_id: str = ""

    def describe(self) -> str:
        filters = " ".join(
            f for f in (self.prefix and f"prefix={self.prefix}", self.suffix and f"suffix={self.suffix}") if f
        )
        return f"{self.arn} {','.join(self.events)}" + (f" {filters}" if filters else "")


def bucket_expected_rule(*, bucket: Bucket) -> Rule:
    """The rule Pipelens applies for ``bucket`` (its ARN or the MINIO_NOTIFY_ARN setting)."""
    return Rule(
        arn=bucket.notify_arn or settings.MINIO_NOTIFY_ARN,
        events=tuple(sorted(bucket.event_names or DEFAULT_NOTIFY_EVENTS)),
        prefix=bucket.prefix_filter,
        suffix=bucket.suffix_filter,
        rule_id=PIPELENS_RULE_ID,
    )


def filter_value_problem(value: str) -> str:
    """Why MinIO's rule for filter values refuses ``value``, or "" if it is fine.

    The rule is MinIO's ``event.ValidateFilterRuleValue`` (internal/event/config.go):
    no "." or ".." path segment, at most 1024 bytes, valid UTF-8, no backslash. The
    MinIO release deploy/local pins checks the empty value it is decoding into instead
    of the received one, so it stores any value; Pipelens checks it before sending."""
    if not value:
        return ""
    if any(segment in (".", "..") for segment in value.split("/")):
        return "has a '.' or '..' path segment, which MinIO refuses"
    if "\\" in value:
        return "contains a backslash, which MinIO refuses"
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if len(encoded) > 1024:
        return "is longer than MinIO's 1024 bytes"
    return ""


@dataclass
class NotificationCheck:
    """The expected rule beside what the store holds; ``drift`` lists each difference."""

    expected: Rule
    held: list[Rule] = field(default_factory=list)  # every queue rule the store holds
    drift: list[str] = field(default_factory=list)
    error: str = ""  # the store could not be read
    applies: bool = True  # False for SeaweedFS: no per-bucket notification exists

    @property
    def in_sync(self) -> bool:
        return self.applies and not self.error and not self.drift


def bucket_notification_check(*, bucket: Bucket) -> NotificationCheck:
    """Read ``bucket``'s notification from its store and compare it with what Pipelens expects."""
    expected = bucket_expected_rule(bucket=bucket)
    if store_kind(bucket.store) != "minio":
        return NotificationCheck(expected=expected, applies=False)
    try:
        config = bucket_notification_read(store=bucket.store, bucket=bucket.name)
    except StoreAdminError as exc:
        return NotificationCheck(expected=expected, error=str(exc))
    held = [
        Rule(
            arn=q.queue,
            events=tuple(sorted(q.events)),
            prefix=q.prefix_filter_rule.value if q.prefix_filter_rule else "",
            suffix=q.suffix_filter_rule.value if q.suffix_filter_rule else "",
            rule_id=q.config_id or "",
        )
        for q in config.queue_config_list
    ]
    return NotificationCheck(expected=expected, held=held, drift=rule_drift(expected, held))


def rule_drift(expected: Rule, held: list[Rule]) -> list[str]:
    """The differences between Pipelens' rule and the rules a store holds (pure)."""
    ours = [r for r in held if r.rule_id == PIPELENS_RULE_ID or r.arn == expected.arn]
    if not ours:
        return [f"the store has no rule sending to {expected.arn}"]
    if len(ours) > 1:
        return [f"the store has {len(ours)} rules for Pipelens instead of one"]
    (rule,) = ours
    drift = []
    for name, want, have in (
        ("target", expected.arn, rule.arn),
        ("events", ", ".join(expected.events), ", ".join(rule.events)),
        ("prefix filter", expected.prefix, rule.prefix),
        ("suffix filter", expected.suffix, rule.suffix),
    ):
        if want != have:
            drift.append(f"{name}: Pipelens expects {want or '(none)'!s}, the store has {have or '(none)'!s}")
    return drift


def store_kafka_targets(*, store: str) -> tuple[list[KafkaTarget], str]:
    """MinIO store ``store``'s loaded Kafka targets, and an error text if they cannot be read."""
    try:
        return kafka_targets_read(store=store), ""
    except StoreAdminError as exc:
        return [], str(exc)


def bucket_sweeps_recent(*, bucket: Bucket, limit: int = 10) -> list[BucketSweep]:
    """The bucket's latest reconciliation sweeps, open ones first (the console's bucket page)."""
    sweeps = BucketSweep.objects.filter(bucket=bucket).order_by("finished_at", "-requested_at", "-id")
    return list(sweeps[:limit])


def bucket_probes_recent(*, bucket: Bucket, limit: int = 5) -> list:
    """The bucket's latest probes, newest first (docs/operations.md#probe)."""
    return list(Probe.objects.filter(bucket=bucket).order_by("-created_at", "-id")[:limit])
