"""Parse one Kafka message from MinIO (or another S3 store) into typed events.

First stage of the ingest flow described in docs/architecture.md: bytes in,
``ObjectEvent`` objects out, or ``EventParseError`` with a reason a human can
act on (the consumer stores it in an ``IngestError`` row and carries on).
Pure: no Django, no I/O, so it can be tested and fuzzed on its own.

Accepted shapes:

* MinIO: ``{"EventName": ..., "Key": "bucket/key", "Records": [one record]}``;
* plain S3 event format (Versity Gateway, AWS): ``{"Records": [record, ...]}``;
* the ``s3:TestEvent`` message S3 stores send when a notification target is
  configured: valid, but about no object, so it yields no events.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

import orjson

from runs.events import EventAction, ObjectEvent

__all__ = [
    "MAX_MESSAGE_BYTES",
    "EventAction",
    "EventParseError",
    "ObjectEvent",
    "classify_event_name",
    "parse_message",
]

# MinIO messages are ~1-2 KiB; 1 MiB leaves room for big user metadata while
# bounding the work one hostile message can cause.
MAX_MESSAGE_BYTES = 1024 * 1024


class EventParseError(ValueError):
    """The message cannot be turned into events; ``str(exc)`` says why."""


_C, _R, _A, _M = EventAction.CREATED, EventAction.REMOVED, EventAction.ACCESSED, EventAction.METADATA

# Every concrete event name, without the "s3:" prefix. Sources: MinIO's
# internal/event/name.go, the AWS S3 notification docs and Versity Gateway's
# s3event/filter.go. An unknown name is an error rather than a guess, so a
# new store or MinIO release shows up in the ingest errors instead of being
# silently mis-filed.
_ACTIONS: dict[str, EventAction] = {
    # Content written.
    "ObjectCreated:Put": _C,
    "ObjectCreated:Post": _C,
    "ObjectCreated:Copy": _C,
    "ObjectCreated:CompleteMultipartUpload": _C,
    # MinIO files metadata changes under ObjectCreated; they are not new content.
    "ObjectCreated:PutTagging": _M,
    "ObjectCreated:DeleteTagging": _M,
    "ObjectCreated:PutRetention": _M,
    "ObjectCreated:PutLegalHold": _M,
    # Content gone. NoOP is a delete of a key that did not exist: still "gone".
    "ObjectRemoved:Delete": _R,
    "ObjectRemoved:DeleteMarkerCreated": _R,
    "ObjectRemoved:DeleteAllVersions": _R,
    "ObjectRemoved:NoOP": _R,
    "ObjectRemoved:DeleteTagging": _M,  # used by some S3-compatible stores
    # AWS lifecycle expiration really deletes (or hides) the object.
    "LifecycleExpiration:Delete": _R,
    "LifecycleExpiration:DeleteMarkerCreated": _R,
    "ReducedRedundancyLostObject": _R,  # AWS: the data is lost, reads fail
    # Reads.
    "ObjectAccessed:Get": _A,
    "ObjectAccessed:Head": _A,
    "ObjectAccessed:GetRetention": _A,
    "ObjectAccessed:GetLegalHold": _A,
    "ObjectAccessed:Attributes": _A,
    # Metadata, tiering, replication, scanner reports: nothing a viewer shows.
    "ObjectTagging:Put": _M,
    "ObjectTagging:Delete": _M,
    "ObjectAcl:Put": _M,
    "ObjectRestore:Post": _M,
    "ObjectRestore:Completed": _M,
    "ObjectRestore:Delete": _M,
    "ObjectTransition:Failed": _M,
    "ObjectTransition:Complete": _M,
    "LifecycleTransition": _M,
    "IntelligentTiering": _M,
    # MinIO ILM removes a delete marker of an already deleted object: the key
    # stays empty, so nothing visible changes.
    "LifecycleDelMarkerExpiration:Delete": _M,
    "Replication:OperationFailedReplication": _M,
    "Replication:OperationCompletedReplication": _M,
    "Replication:OperationMissedThreshold": _M,
    "Replication:OperationReplicatedAfterThreshold": _M,
    "Replication:OperationNotTracked": _M,
    "Scanner:ManyVersions": _M,
    "Scanner:LargeVersions": _M,
    "Scanner:BigPrefix": _M,
    # Bucket-level events name no object; parse_message yields nothing for them.
    "BucketCreated:*": _M,
    "BucketRemoved:*": _M,
}
_BUCKET_EVENTS = frozenset({"BucketCreated:*", "BucketRemoved:*"})

# Sequencers in this range are nanoseconds since the epoch (2001-09-09 ..
# 2262-04-11, the int64 limit of the BigIntegerField that stores ``order``).
# Others are not comparable with event times: Versity Gateway's sequencer is
# a counter that restarts at 1 with the process, AWS's is an opaque value
# beyond int64. Ordering those by sequencer would make every event after a
# restart look older than the ones before it.
_NS_SEQUENCER_MIN = 10**18
_ORDER_MAX = 2**63 - 1
# What an order value is believed to be (issue 8, finding 8): the newest order
# stored for a key wins, so one forged message with a huge sequencer or a
# far-future event time would freeze its key forever. MinIO's sequencer is the
# object's modification time, seconds away from the event time; one further
# than SEQUENCER_MAX_SKEW_NS is ignored (the event time orders it). An event
# time more than EVENT_MAX_FUTURE_NS ahead of the consumer's clock is refused.
SEQUENCER_MAX_SKEW_NS = 3600 * 10**9
EVENT_MAX_FUTURE_NS = 3600 * 10**9
_HEX = re.compile(r"[0-9A-Fa-f]{1,32}")
# S3 event times: "2026-11-29T06:02:43.123Z" (MinIO, AWS); Versity writes
# Go's RFC 3339 with a numeric offset and no fraction.
_EVENT_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def classify_event_name(name: str) -> EventAction:
    """Map an S3 event name, with or without the ``s3:`` prefix, to its action."""
    bare = _bare_event_name(name)
    action = _ACTIONS.get(bare)
    if action is None:
        if bare.endswith(":*"):
            raise EventParseError(f"event name {name!r} is a filter pattern, not an event")
        raise EventParseError(f"unknown event name {name!r}")
    return action


def parse_message(
    value: bytes | None,
    *,
    key: bytes | None = None,
    topic: str = "",
    partition: int = -1,
    offset: int = -1,
    now_ns: int | None = None,
) -> list[ObjectEvent]:
    """Parse one Kafka message value into its object events.

    ``key`` is accepted for the caller's convenience but not trusted: MinIO
    sets it to ``bucket/key``, Versity Gateway to one fixed string, so the
    value is the only reliable source. ``now_ns`` is the clock event times
    are checked against (default: now). Raises ``EventParseError`` (and
    nothing else) for any input that is not a well-formed event message.
    """
    del key  # see docstring: the value is authoritative
    latest_ns = (time.time_ns() if now_ns is None else now_ns) + EVENT_MAX_FUTURE_NS
    doc = _load_json(value)
    fast = _parse_minio_common(doc, topic, partition, offset, latest_ns)
    if fast is not None:
        return fast
    if doc.get("Event") == "s3:TestEvent" and "Records" not in doc:
        return []
    records = doc.get("Records")
    if records is None:
        raise EventParseError("message has no 'Records'")
    if not isinstance(records, list):
        raise EventParseError(f"'Records' must be a list, not {_type(records)}")
    if not records:
        raise EventParseError("'Records' is empty")

    top_name = _optional_str(doc, "EventName", "message")
    top_key = _optional_str(doc, "Key", "message")
    single = len(records) == 1
    events = []
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, dict):
            raise EventParseError(f"{where} must be an object, not {_type(record)}")
        event = _parse_record(
            record,
            where,
            minio_key=top_key if single else "",
            minio_name=top_name if single else "",
            coordinates=(topic, partition, offset),
            latest_ns=latest_ns,
        )
        if event is not None:
            events.append(event)
    return events


def _load_json(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise EventParseError("message value is empty (None)")
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise EventParseError(f"message value must be bytes, not {_type(value)}")
    if len(value) == 0:
        raise EventParseError("message value is empty")
    if len(value) > MAX_MESSAGE_BYTES:
        raise EventParseError(f"message value is {len(value)} bytes, over the {MAX_MESSAGE_BYTES} byte limit")
    try:
        # orjson reads UTF-8 bytes itself (and refuses invalid UTF-8), without the
        # copy and decode below; anything it refuses is read again below, which
        # says what is wrong in the same words as before.
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        pass
    else:
        if type(doc) is dict:
            return doc
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EventParseError(f"message value is not UTF-8: {exc}") from None
    try:
        # orjson: strict (no NaN/Infinity, no lone surrogates, 64-bit
        # integers, bounded nesting) and several times faster than json,
        # which matters at thousands of messages a second.
        doc = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise EventParseError(f"message value is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise EventParseError(f"message value must be a JSON object, not {_type(doc)}")
    return doc


# --- the common case, fast -----------------------------------------------------------
# A consumer catching up parses thousands of messages a second, nearly all of one
# shape: MinIO's single record with a known event name, a top-level Key and a
# "...Z" event time. _parse_minio_common reads that shape with plain dict and type
# checks (no helper call per field, no error text built), and returns None at
# the first thing it does not expect: the general path below then parses the
# message again and decides, with its own messages. So the fast path can only
# accept what the general path accepts, with the same result
# (tests/streaming/ingest/test_s3_events.py compares the two on every input).

# Exact event names (as MinIO writes them, "s3:" included) of object events.
_COMMON_ACTIONS = {"s3:" + name: action for name, action in _ACTIONS.items() if name not in _BUCKET_EVENTS}


def _parse_minio_common(
    doc: dict[str, Any], topic: str, partition: int, offset: int, latest_ns: int
) -> list[ObjectEvent] | None:
    records = doc.get("Records")
    if type(records) is not list or len(records) != 1:
        return None
    record = records[0]
    if type(record) is not dict:
        return None
    name = record.get("eventName")
    action = _COMMON_ACTIONS.get(name) if type(name) is str else None
    if action is None or doc.get("EventName") != name:
        return None
    s3 = record.get("s3")
    if type(s3) is not dict:
        return None
    bucket_info, obj = s3.get("bucket"), s3.get("object")
    if type(bucket_info) is not dict or type(obj) is not dict:
        return None
    bucket, encoded_key, top_key = bucket_info.get("name"), obj.get("key"), doc.get("Key")
    if (
        type(bucket) is not str
        or type(encoded_key) is not str
        or type(top_key) is not str
        or not bucket
        or not encoded_key
        or "/" in bucket
        or "\x00" in bucket
        or "\x00" in encoded_key
        or "\x00" in top_key
        or not top_key.startswith(bucket)
        or top_key[len(bucket) : len(bucket) + 1] != "/"
        or len(top_key) == len(bucket) + 1
    ):
        return None
    when = record.get("eventTime")
    if type(when) is not str or len(when) != 24 or when[23] != "Z" or not when.isascii():
        return None
    match = _EVENT_TIME.fullmatch(when)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()[:7]
    try:
        whole = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
    except ValueError:
        return None
    frac_ns = int(fraction.ljust(9, "0"))
    time_ns = int(whole.timestamp()) * 10**9 + frac_ns
    if not 0 <= time_ns <= latest_ns or time_ns > _ORDER_MAX:
        return None
    sequencer, etag, content_type, version_id = (
        obj.get("sequencer"),
        obj.get("eTag"),
        obj.get("contentType"),
        obj.get("versionId"),
    )
    size = obj.get("size")
    for text in (sequencer, etag, content_type, version_id):
        if text is not None and (type(text) is not str or "\x00" in text):
            return None
    if size is not None and (type(size) is not int or size < 0):
        return None
    if action is EventAction.REMOVED:
        size, etag, content_type = None, "", ""
    return [
        ObjectEvent(
            bucket=bucket,
            key=top_key[len(bucket) + 1 :],
            action=action,
            event_name=name,
            event_time=whole.replace(microsecond=frac_ns // 1000),
            order=_order(sequencer or "", time_ns),
            size=size,
            etag=(etag or "").strip('"'),
            content_type=content_type or "",
            version_id=version_id or "",
            sequencer=sequencer or "",
            topic=topic,
            partition=partition,
            offset=offset,
        )
    ]


def _parse_record(
    record: dict[str, Any],
    where: str,
    *,
    minio_key: str,
    minio_name: str,
    coordinates: tuple[str, int, int],
    latest_ns: int,
) -> ObjectEvent | None:
    raw_name = _required_str(record, "eventName", where)
    action = classify_event_name(raw_name)
    bare = _bare_event_name(raw_name)
    if minio_name and _bare_event_name(minio_name) != bare:
        raise EventParseError(f"EventName {minio_name!r} disagrees with {where}.eventName {raw_name!r}")
    if bare in _BUCKET_EVENTS:
        return None

    s3 = _required_dict(record, "s3", where)
    bucket_info = _required_dict(s3, "bucket", f"{where}.s3")
    obj = _required_dict(s3, "object", f"{where}.s3")
    bucket = _required_str(bucket_info, "name", f"{where}.s3.bucket")
    if "/" in bucket:
        raise EventParseError(f"bucket name {bucket!r} contains '/'")
    encoded_key = _required_str(obj, "key", f"{where}.s3.object")

    if minio_key:
        # MinIO's top-level Key is already decoded and is exact, whereas the
        # record's key went through QueryEscape; prefer it, but only if it
        # is about the same bucket.
        prefix = bucket + "/"
        if not minio_key.startswith(prefix):
            raise EventParseError(f"Key {minio_key!r} does not start with bucket {prefix!r}")
        object_key = minio_key[len(prefix) :]
    else:
        try:
            # Record keys are query-encoded: '+' is a space, '%2B' a plus.
            object_key = unquote_plus(encoded_key, errors="strict")
        except UnicodeDecodeError:
            raise EventParseError(f"{where}.s3.object.key {encoded_key!r} does not decode to UTF-8") from None
        object_key = _check_text(object_key, f"{where}.s3.object.key")
    if not object_key:
        raise EventParseError(f"{where} has an empty object key")

    event_time, time_ns = _parse_event_time(record.get("eventTime"), where)
    if time_ns > latest_ns:
        raise EventParseError(
            f"{where}.eventTime {record.get('eventTime')!r} is more than "
            f"{EVENT_MAX_FUTURE_NS // 10**9} s in the future; the store's clock or "
            f"the message is wrong"
        )
    sequencer = _optional_str(obj, "sequencer", f"{where}.s3.object")
    size = _parse_size(obj.get("size"), where)
    etag = _optional_str(obj, "eTag", f"{where}.s3.object").strip('"')
    content_type = _optional_str(obj, "contentType", f"{where}.s3.object")
    if action is EventAction.REMOVED:
        # A removed object has no content: whatever a store fills in here
        # (Versity sends size 0) must not overwrite the last known values.
        size, etag, content_type = None, "", ""

    topic, partition, offset = coordinates
    return ObjectEvent(
        bucket=bucket,
        key=object_key,
        action=action,
        event_name="s3:" + bare,
        event_time=event_time,
        order=_order(sequencer, time_ns),
        size=size,
        etag=etag,
        content_type=content_type,
        version_id=_optional_str(obj, "versionId", f"{where}.s3.object"),
        sequencer=sequencer,
        topic=topic,
        partition=partition,
        offset=offset,
    )


def _bare_event_name(name: str) -> str:
    if not isinstance(name, str):
        raise EventParseError(f"event name must be a string, not {_type(name)}")
    return name[3:] if name.startswith("s3:") else name


def _parse_event_time(value: Any, where: str) -> tuple[datetime, int]:
    """Return the event time as aware UTC datetime and as integer nanoseconds."""
    if value is None:
        raise EventParseError(f"{where} has no eventTime")
    if not isinstance(value, str):
        raise EventParseError(f"{where}.eventTime must be a string, not {_type(value)}")
    match = _EVENT_TIME.fullmatch(value)
    if match is None:
        raise EventParseError(f"{where}.eventTime {value!r} is not an ISO-8601 UTC time")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        if zulu:  # the common case (MinIO, AWS): already UTC, no conversion needed
            whole = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        else:
            if int(off_h) > 23 or int(off_m) > 59:
                raise ValueError("offset out of range")
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            offset = -offset if sign == "-" else offset
            local = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=timezone(offset)
            )
            whole = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise EventParseError(f"{where}.eventTime {value!r} is not a valid time") from None
    frac_ns = int(fraction.ljust(9, "0")) if fraction else 0
    time_ns = int(whole.timestamp()) * 10**9 + frac_ns
    if not 0 <= time_ns <= _ORDER_MAX:
        raise EventParseError(f"{where}.eventTime {value!r} is out of range (1970..2262)")
    return whole.replace(microsecond=frac_ns // 1000), time_ns


def _order(sequencer: str, time_ns: int) -> int:
    """Newer-wins value: the sequencer when it is a ns timestamp near the event time,
    else the event time."""
    if _HEX.fullmatch(sequencer):
        value = int(sequencer, 16)
        if _NS_SEQUENCER_MIN <= value <= _ORDER_MAX and abs(value - time_ns) <= SEQUENCER_MAX_SKEW_NS:
            return value
    return time_ns


def _parse_size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    # bool is an int subclass; a JSON true is not a size.
    if not isinstance(value, int) or isinstance(value, bool):
        raise EventParseError(f"{where}.s3.object.size must be an integer, not {_type(value)}")
    if value < 0:
        raise EventParseError(f"{where}.s3.object.size is negative ({value})")
    return value


def _required_dict(parent: dict[str, Any], name: str, where: str) -> dict[str, Any]:
    value = parent.get(name)
    if value is None:
        raise EventParseError(f"{where} has no '{name}'")
    if not isinstance(value, dict):
        raise EventParseError(f"{where}.{name} must be an object, not {_type(value)}")
    return value


def _required_str(parent: dict[str, Any], name: str, where: str) -> str:
    value = _optional_str(parent, name, where)
    if not value:
        raise EventParseError(f"{where} has no '{name}'")
    return value


def _optional_str(parent: dict[str, Any], name: str, where: str) -> str:
    """A string field that may be absent or null (Versity sends null eTags)."""
    value = parent.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise EventParseError(f"{where}.{name} must be a string, not {_type(value)}")
    return _check_text(value, f"{where}.{name}")


def _check_text(value: str, where: str) -> str:
    # PostgreSQL text cannot hold NUL: it would fail the whole database
    # batch later instead of this one message now. (Lone surrogates, the
    # other unstorable string, are already refused by orjson.)
    if "\x00" in value:
        raise EventParseError(f"{where} contains a NUL character")
    return value


def _type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)
