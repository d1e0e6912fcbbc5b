"""Tests for streaming/ingest/s3_events.py: Kafka message value -> ObjectEvent."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime
from unittest import mock
from urllib.parse import quote_plus

import orjson
import pytest

from streaming.ingest import s3_events
from streaming.ingest.s3_events import (
    MAX_MESSAGE_BYTES,
    EventAction,
    EventParseError,
    ObjectEvent,
    classify_event_name,
    parse_message,
)

UTC = UTC
KEY = "artifacts/iris-pipeline-7xk2p/2026/11/29/iris-pipeline-7xk2p-3301820553/mlpipeline-ui-metadata.tgz"
# 2026-11-29T06:02:43.123456789Z in ns, as MinIO writes it (upper-case hex).
SEQUENCER = "18EC6EC97FAC2B15"
SEQUENCER_NS = 1795932163123456789
EVENT_TIME_NS = 1795932163123000000  # 2026-11-29T06:02:43.123Z


def minio_record(
    key: str = KEY,
    *,
    bucket: str = "mlpipeline",
    event_name: str = "s3:ObjectCreated:Put",
    event_time: str = "2026-11-29T06:02:43.123Z",
    size: object = 2048,
    etag: object = "d41d8cd98f00b204e9800998ecf8427e",
    content_type: object = "application/gzip",
    sequencer: object = SEQUENCER,
    version_id: object = None,
) -> dict:
    """One S3 v2.0 record shaped like MinIO's (key query-escaped like Go's QueryEscape)."""
    obj = {
        "key": quote_plus(key, safe=""),
        "sequencer": sequencer,
        "userMetadata": {"content-type": content_type},
    }
    if event_name.removeprefix("s3:") not in ("ObjectRemoved:Delete", "ObjectRemoved:DeleteMarkerCreated"):
        obj.update({"size": size, "eTag": etag, "contentType": content_type})
    if version_id is not None:
        obj["versionId"] = version_id
    return {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": {"principalId": "minio"},
        "requestParameters": {"principalId": "minio", "region": "", "sourceIPAddress": "10.244.0.17"},
        "responseElements": {
            "x-amz-id-2": "dd9025bab4ad464b049177c95eb6ebf374d3b3fd1af9251148b658df7ac2e3e8",
            "x-amz-request-id": "187C8F2A9E5B1D03",
            "x-minio-deployment-id": "5b0c8a55-6d1f-4c5e-9a5c-0f7d3e2b1a90",
            "x-minio-origin-endpoint": "http://10.244.0.9:9000",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "minio"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
        "source": {"host": "10.244.0.17", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70"},
    }


def minio_message(key: str = KEY, *, bucket: str = "mlpipeline", **record_fields) -> dict:
    """A whole MinIO Kafka message value (as a dict; see ``encode``)."""
    record = minio_record(key, bucket=bucket, **record_fields)
    return {"EventName": record["eventName"], "Key": f"{bucket}/{key}", "Records": [record]}


def encode(doc: object) -> bytes:
    return json.dumps(doc).encode()


def parse_one(doc: object, **kwargs) -> ObjectEvent:
    events = parse_message(encode(doc), **kwargs)
    assert len(events) == 1
    return events[0]


def assert_rejected(value: bytes | None, reason: str) -> None:
    with pytest.raises(EventParseError) as excinfo:
        parse_message(value)
    assert reason in str(excinfo.value)
    assert_same_both_ways(value)


NOW_NS = 1795971700 * 10**9  # a fixed consumer clock, so that two parses can be compared


def _outcome(value, now_ns: int):
    try:
        return "events", parse_message(value, topic="t", partition=1, offset=7, now_ns=now_ns)
    except EventParseError as exc:
        return "error", str(exc)


def assert_same_both_ways(value, *, now_ns: int = NOW_NS):
    """The fast path for MinIO's common shape (s3_events._parse_minio_common) gives what
    the general path gives: the same events, or the same error."""
    with_fast = _outcome(value, now_ns)
    with mock.patch.object(s3_events, "_parse_minio_common", lambda *args: None):
        general = _outcome(value, now_ns)
    assert with_fast == general
    return with_fast


# --- well-formed messages -------------------------------------------------


def test_minio_put_becomes_one_complete_event():
    value = encode(minio_message(version_id="null"))
    events = parse_message(
        value, key=b"mlpipeline/" + KEY.encode(), topic="minio-events", partition=2, offset=41
    )
    assert events == [
        ObjectEvent(
            bucket="mlpipeline",
            key=KEY,
            action=EventAction.CREATED,
            event_name="s3:ObjectCreated:Put",
            event_time=datetime(2026, 11, 29, 6, 2, 43, 123000, tzinfo=UTC),
            order=SEQUENCER_NS,
            size=2048,
            etag="d41d8cd98f00b204e9800998ecf8427e",
            content_type="application/gzip",
            version_id="null",
            sequencer=SEQUENCER,
            topic="minio-events",
            partition=2,
            offset=41,
        )
    ]
    assert events[0].event_time.utcoffset().total_seconds() == 0


def test_plain_s3_format_with_several_records():
    first = minio_record("run-1/train/model.pkl", event_name="ObjectCreated:CompleteMultipartUpload")
    second = minio_record(
        "run-1/train/metrics.json", event_name="s3:ObjectRemoved:Delete", sequencer="18EC6EC97FAC2B16"
    )
    events = parse_message(encode({"Records": [first, second]}))
    assert [(e.key, e.action, e.event_name, e.order, e.size) for e in events] == [
        (
            "run-1/train/model.pkl",
            EventAction.CREATED,
            "s3:ObjectCreated:CompleteMultipartUpload",
            SEQUENCER_NS,
            2048,
        ),
        ("run-1/train/metrics.json", EventAction.REMOVED, "s3:ObjectRemoved:Delete", SEQUENCER_NS + 1, None),
    ]


@pytest.mark.parametrize(
    "key",
    [
        "runs/my run/step one/report final.html",
        "runs/a+b/c+d/x+y=z.csv",
        "runs/100%/done/50% off.txt",
        "runs/%2F not a slash/step/%41.txt",
        "läufe/schritt-ü/データ/模型 ✓.json",
        "v2/artifacts/iris/0b0e7d4c-2f7a-4a51-9a43-5b8f3cbe6e1a/train-model/a/b/c/d/e/f/g/h.bin",
    ],
)
def test_keys_are_decoded_exactly_from_the_record_and_from_minio_key(key):
    # Plain S3 format: only the query-escaped record key.
    assert parse_one({"Records": [minio_record(key)]}).key == key
    # MinIO format: the decoded top-level Key is preferred.
    assert parse_one(minio_message(key)).key == key


def test_record_key_decoding_rules():
    record = minio_record()
    record["s3"]["object"]["key"] = "dir%2Fa+b%2Bc%20d"
    assert parse_one({"Records": [record]}).key == "dir/a b+c d"


def test_minio_top_level_key_is_preferred_over_the_record_key():
    # A literal "+" escaped carelessly as "+" would decode to a space; MinIO's
    # Key is already decoded and exact.
    doc = minio_message("runs/a+b/step/out.txt")
    doc["Records"][0]["s3"]["object"]["key"] = "runs/a+b/step/out.txt"
    assert parse_one(doc).key == "runs/a+b/step/out.txt"
    del doc["Key"]
    assert parse_one(doc).key == "runs/a b/step/out.txt"


def test_top_level_key_ignored_when_message_has_several_records():
    doc = {"Key": "mlpipeline/unrelated", "Records": [minio_record("a/b/c"), minio_record("d/e/f")]}
    assert [e.key for e in parse_message(encode(doc))] == ["a/b/c", "d/e/f"]


def test_event_name_without_prefix_is_normalised():
    record = minio_record(event_name="ObjectCreated:Copy")
    event = parse_one({"Records": [record]})
    assert (event.event_name, event.action) == ("s3:ObjectCreated:Copy", EventAction.CREATED)


def test_removed_event_has_no_size_etag_or_content_type_even_if_a_store_sends_them():
    # Versity Gateway sends size 0 and may fill in other fields for deletes.
    record = minio_record(event_name="s3:ObjectRemoved:DeleteMarkerCreated", version_id="7d3c")
    record["s3"]["object"].update({"size": 0, "eTag": "abc", "contentType": "text/plain"})
    event = parse_one({"Records": [record]})
    assert (event.action, event.size, event.etag, event.content_type, event.version_id) == (
        EventAction.REMOVED,
        None,
        "",
        "",
        "7d3c",
    )


def test_minio_delete_without_object_fields():
    event = parse_one(minio_message(event_name="s3:ObjectRemoved:Delete"))
    assert (event.action, event.size, event.etag, event.content_type) == (EventAction.REMOVED, None, "", "")


def test_etag_quotes_are_stripped_and_nulls_become_empty():
    event = parse_one(minio_message(etag='"5fc7298143efe1276d39a3466d4e255f-1"'))
    assert event.etag == "5fc7298143efe1276d39a3466d4e255f-1"
    event = parse_one(minio_message(etag=None, content_type=None, sequencer=None, size=None))
    assert (event.etag, event.content_type, event.sequencer, event.size) == ("", "", "", None)


def test_zero_size_is_kept():
    assert parse_one(minio_message(size=0)).size == 0


def test_versity_gateway_message():
    """Plain S3 format, RFC 3339 time with an offset, a counter as sequencer, nulls."""
    record = minio_record(
        "run-7/prep/data.csv", event_time="2026-11-29T07:02:43+01:00", sequencer="1A", etag=None
    )
    record["eventSource"] = "aws:s3"
    record["eventVersion"] = "2.2"
    record["s3"]["object"]["versionId"] = None
    event = parse_one({"Records": [record]})
    assert event.event_time == datetime(2026, 11, 29, 6, 2, 43, tzinfo=UTC)
    assert event.event_time.tzinfo == UTC
    # A counter that restarts with the gateway is no clock: event time wins.
    assert event.order == 1795932163000000000
    assert (event.sequencer, event.etag, event.version_id) == ("1A", "", "")


def test_s3_test_event_yields_nothing():
    doc = {"Service": "S3", "Event": "s3:TestEvent", "Time": "2026-11-29T06:02:43Z", "Bucket": "mlpipeline"}
    assert parse_message(encode(doc)) == []


def test_bucket_level_events_yield_nothing():
    record = minio_record(event_name="s3:BucketCreated:*")
    record["s3"]["object"] = {"key": ""}
    doc = {"EventName": "s3:BucketCreated:*", "Key": "mlpipeline/", "Records": [record]}
    assert parse_message(encode(doc)) == []


@pytest.mark.parametrize("action_name", ["s3:ObjectAccessed:Get", "s3:ObjectCreated:PutTagging"])
def test_accessed_and_metadata_events_keep_their_fields(action_name):
    event = parse_one(minio_message(event_name=action_name))
    assert (event.size, event.etag) == (2048, "d41d8cd98f00b204e9800998ecf8427e")


# --- event time and order ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "ns"),
    [
        ("2026-11-29T06:02:43Z", datetime(2026, 11, 29, 6, 2, 43, tzinfo=UTC), 1795932163000000000),
        ("2026-11-29T06:02:43.1Z", datetime(2026, 11, 29, 6, 2, 43, 100000, tzinfo=UTC), 1795932163100000000),
        (
            "2026-11-29T06:02:43.123Z",
            datetime(2026, 11, 29, 6, 2, 43, 123000, tzinfo=UTC),
            1795932163123000000,
        ),
        (
            "2026-11-29T06:02:43.123456789Z",
            datetime(2026, 11, 29, 6, 2, 43, 123456, tzinfo=UTC),
            1795932163123456789,
        ),
        (
            "2026-11-29T00:02:43.5-06:00",
            datetime(2026, 11, 29, 6, 2, 43, 500000, tzinfo=UTC),
            1795932163500000000,
        ),
        ("2026-11-29T06:02:43+00:00", datetime(2026, 11, 29, 6, 2, 43, tzinfo=UTC), 1795932163000000000),
    ],
)
def test_event_time_formats_and_ns_order_without_sequencer(text, expected, ns):
    event = parse_one(minio_message(event_time=text, sequencer=None))
    assert event.event_time == expected
    assert event.event_time.utcoffset().total_seconds() == 0
    assert event.order == ns


@pytest.mark.parametrize(
    ("sequencer", "order"),
    [
        (SEQUENCER, SEQUENCER_NS),
        (SEQUENCER.lower(), SEQUENCER_NS),
        (f"{SEQUENCER_NS + 59 * 60 * 10**9:X}", SEQUENCER_NS + 59 * 60 * 10**9),  # near the event time
        ("1876F0E2C4B5A3D1", EVENT_TIME_NS),  # a ns timestamp a year away: not believed
        ("7FFFFFFFFFFFFFFF", EVENT_TIME_NS),  # forged maximum: would freeze the key forever
        ("", EVENT_TIME_NS),
        ("0x18EC6EC97FAC2B15", EVENT_TIME_NS),  # int() would accept it; we do not
        ("18EC_6EC9_7FAC_2B15", EVENT_TIME_NS),
        (" 18EC6EC97FAC2B15", EVENT_TIME_NS),
        ("not-hex", EVENT_TIME_NS),
        ("1A", EVENT_TIME_NS),  # counter, not a clock
        ("0A1B2C3D4E5F678901", EVENT_TIME_NS),  # opaque value beyond int64 (AWS-style)
        ("1000000000000000000000000", EVENT_TIME_NS),
    ],
)
def test_order_uses_sequencer_only_when_it_is_a_ns_timestamp(sequencer, order):
    event = parse_one(minio_message(sequencer=sequencer))
    assert event.order == order
    assert event.sequencer == sequencer


def test_an_event_time_far_in_the_future_is_refused():
    """One forged far-future event would win every comparison for its key (issue 8, finding 8)."""
    from streaming.ingest.s3_events import EVENT_MAX_FUTURE_NS

    with pytest.raises(EventParseError, match="in the future"):
        parse_message(encode(minio_message(event_time="2200-01-01T00:00:00.000Z", sequencer="")))
    # Relative to the consumer's clock: a message within the tolerance is accepted.
    now = EVENT_TIME_NS - EVENT_MAX_FUTURE_NS + 10**9
    assert parse_one(minio_message(), now_ns=now).order == SEQUENCER_NS
    with pytest.raises(EventParseError, match="in the future"):
        parse_message(encode(minio_message()), now_ns=EVENT_TIME_NS - EVENT_MAX_FUTURE_NS - 10**9)


def test_order_compares_newer_after_older():
    older = parse_one(minio_message(sequencer="18EC6EC97FAC2B15"))
    newer = parse_one(minio_message(sequencer="18EC6EC97FAC2B16"))
    assert newer.order > older.order


# --- classification ----------------------------------------------------------

CLASSIFIED = {
    EventAction.CREATED: [
        "ObjectCreated:Put",
        "ObjectCreated:Post",
        "ObjectCreated:Copy",
        "ObjectCreated:CompleteMultipartUpload",
    ],
    EventAction.REMOVED: [
        "ObjectRemoved:Delete",
        "ObjectRemoved:DeleteMarkerCreated",
        "ObjectRemoved:NoOP",
        "ObjectRemoved:DeleteAllVersions",
        "LifecycleExpiration:Delete",
        "LifecycleExpiration:DeleteMarkerCreated",
        "ReducedRedundancyLostObject",
    ],
    EventAction.ACCESSED: [
        "ObjectAccessed:Get",
        "ObjectAccessed:Head",
        "ObjectAccessed:GetRetention",
        "ObjectAccessed:GetLegalHold",
        "ObjectAccessed:Attributes",
    ],
    EventAction.METADATA: [
        "ObjectCreated:PutTagging",
        "ObjectCreated:DeleteTagging",
        "ObjectCreated:PutRetention",
        "ObjectCreated:PutLegalHold",
        "ObjectRemoved:DeleteTagging",
        "ObjectTagging:Put",
        "ObjectTagging:Delete",
        "ObjectAcl:Put",
        "ObjectRestore:Post",
        "ObjectRestore:Completed",
        "ObjectRestore:Delete",
        "ObjectTransition:Failed",
        "ObjectTransition:Complete",
        "LifecycleTransition",
        "IntelligentTiering",
        "LifecycleDelMarkerExpiration:Delete",
        "Replication:OperationFailedReplication",
        "Replication:OperationCompletedReplication",
        "Replication:OperationMissedThreshold",
        "Replication:OperationReplicatedAfterThreshold",
        "Replication:OperationNotTracked",
        "Scanner:ManyVersions",
        "Scanner:LargeVersions",
        "Scanner:BigPrefix",
        "BucketCreated:*",
        "BucketRemoved:*",
    ],
}
ALL_NAMES = [(name, action) for action, names in CLASSIFIED.items() for name in names]


@pytest.mark.parametrize(("name", "action"), ALL_NAMES)
def test_classify_every_known_event_name(name, action):
    assert classify_event_name("s3:" + name) is action
    assert classify_event_name(name) is action


@pytest.mark.parametrize(("name", "action"), [(n, a) for n, a in ALL_NAMES if not n.startswith("Bucket")])
def test_every_known_object_event_parses(name, action):
    event = parse_one(minio_message(event_name="s3:" + name))
    assert (event.action, event.event_name) == (action, "s3:" + name)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("s3:ObjectCreated:*", "is a filter pattern"),
        ("s3:ObjectRemoved:*", "is a filter pattern"),
        ("s3:ObjectCreated:Frobnicate", "unknown event name"),
        ("s3:objectcreated:put", "unknown event name"),
        ("S3:ObjectCreated:Put", "unknown event name"),
        ("s3:", "unknown event name"),
        ("", "unknown event name"),
        ("s3:TestEvent", "unknown event name"),
    ],
)
def test_classify_rejects_unknown_names(name, reason):
    with pytest.raises(EventParseError) as excinfo:
        classify_event_name(name)
    assert reason in str(excinfo.value)


def test_event_action_values():
    assert [a.value for a in EventAction] == ["created", "removed", "accessed", "metadata"]
    assert EventAction.CREATED == "created"


# --- errors ------------------------------------------------------------------


def _mutated(mutate) -> bytes:
    doc = minio_message()
    mutate(doc)
    return encode(doc)


def _del(path):
    def mutate(doc):
        target = doc
        for part in path[:-1]:
            target = target[part]
        del target[path[-1]]

    return mutate


def _set(path, value):
    def mutate(doc):
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return mutate


OBJ = ("Records", 0, "s3", "object")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "message value is empty"),
        (b"", "message value is empty"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"Records": [', "not valid JSON"),
        (b"{'Records': []}", "not valid JSON"),
        (b'{"Records": [{"size": NaN}]}', "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'[{"Records": []}]', "must be a JSON object, not a list"),
        (b'"s3:ObjectCreated:Put"', "must be a JSON object, not a string"),
        (b"42", "must be a JSON object, not an integer"),
        (b"null", "must be a JSON object, not null"),
        (b'{"EventName": "s3:ObjectCreated:Put"}', "has no 'Records'"),
        (b'{"Records": []}', "'Records' is empty"),
        (b'{"Records": {"0": {}}}', "'Records' must be a list, not an object"),
        (b'{"Records": [1]}', "Records[0] must be an object, not an integer"),
        (b'{"Records": [null]}', "Records[0] must be an object, not null"),
        (_del(("Records", 0, "eventName")), "Records[0] has no 'eventName'"),
        (_set(("Records", 0, "eventName"), 7), "Records[0].eventName must be a string"),
        (
            _set(("Records", 0, "eventName"), "s3:ObjectCreated:Jump"),
            "unknown event name 's3:ObjectCreated:Jump'",
        ),
        (_set(("EventName",), "s3:ObjectRemoved:Delete"), "disagrees with Records[0].eventName"),
        (_del(("Records", 0, "s3")), "Records[0] has no 's3'"),
        (_set(("Records", 0, "s3"), "x"), "Records[0].s3 must be an object, not a string"),
        (_del(("Records", 0, "s3", "bucket")), "Records[0].s3 has no 'bucket'"),
        (_del(("Records", 0, "s3", "bucket", "name")), "Records[0].s3.bucket has no 'name'"),
        (_set(("Records", 0, "s3", "bucket", "name"), ""), "Records[0].s3.bucket has no 'name'"),
        (
            _set(("Records", 0, "s3", "bucket", "name"), ["mlpipeline"]),
            "Records[0].s3.bucket.name must be a string, not a list",
        ),
        (_set(("Records", 0, "s3", "bucket", "name"), "ml/pipeline"), "contains '/'"),
        (_del(OBJ), "Records[0].s3 has no 'object'"),
        (_del(OBJ + ("key",)), "Records[0].s3.object has no 'key'"),
        (_set(OBJ + ("key",), ""), "Records[0].s3.object has no 'key'"),
        (_set(OBJ + ("key",), 12), "Records[0].s3.object.key must be a string"),
        (_set(("Key",), "mlpipeline/"), "empty object key"),
        (_set(("Key",), "otherbucket/" + KEY), "does not start with bucket 'mlpipeline/'"),
        (_set(("Key",), 5), "message.Key must be a string"),
        (_set(("Key",), "mlpipeline/a\x00b"), "contains a NUL character"),
        (_del(("Records", 0, "eventTime")), "Records[0] has no eventTime"),
        (_set(("Records", 0, "eventTime"), ""), "is not an ISO-8601 UTC time"),
        (_set(("Records", 0, "eventTime"), "yesterday"), "is not an ISO-8601 UTC time"),
        (_set(("Records", 0, "eventTime"), "2026-11-29T06:02:43"), "is not an ISO-8601 UTC time"),
        (_set(("Records", 0, "eventTime"), "2026-11-29 06:02:43Z"), "is not an ISO-8601 UTC time"),
        (_set(("Records", 0, "eventTime"), "2026-11-29T06:02:43.1234567891Z"), "is not an ISO-8601 UTC time"),
        (_set(("Records", 0, "eventTime"), "２０２６-11-29T06:02:43Z"), "is not an ISO-8601 UTC time"),
        (_set(("Records", 0, "eventTime"), "2026-13-01T00:00:00Z"), "is not a valid time"),
        (_set(("Records", 0, "eventTime"), "2026-02-29T00:00:00Z"), "is not a valid time"),
        (_set(("Records", 0, "eventTime"), "2026-11-29T24:00:00Z"), "is not a valid time"),
        (_set(("Records", 0, "eventTime"), "2026-11-29T06:02:43+24:00"), "is not a valid time"),
        (_set(("Records", 0, "eventTime"), "0001-01-01T00:00:00+01:00"), "is not a valid time"),
        (_set(("Records", 0, "eventTime"), "1969-12-31T23:59:59Z"), "is out of range"),
        (_set(("Records", 0, "eventTime"), "2300-01-01T00:00:00Z"), "is out of range"),
        (_set(("Records", 0, "eventTime"), 1795932163), "eventTime must be a string, not an integer"),
        (_set(OBJ + ("size",), -1), "size is negative (-1)"),
        (_set(OBJ + ("size",), "2048"), "size must be an integer, not a string"),
        (_set(OBJ + ("size",), 2048.0), "size must be an integer, not a number"),
        (_set(OBJ + ("size",), True), "size must be an integer, not a boolean"),
        (_set(OBJ + ("eTag",), 5), "Records[0].s3.object.eTag must be a string"),
        (_set(OBJ + ("sequencer",), 5), "Records[0].s3.object.sequencer must be a string"),
        (_set(OBJ + ("versionId",), {}), "Records[0].s3.object.versionId must be a string"),
    ],
)
def test_bad_messages_are_rejected_with_a_clear_reason(value, reason):
    if callable(value):
        value = _mutated(value)
    assert_rejected(value, reason)


@pytest.mark.parametrize(
    ("encoded", "reason"),
    [
        ("runs%2Fa%FFb", "does not decode to UTF-8"),
        ("runs/a%00b", "contains a NUL character"),
        ("", "has no 'key'"),
    ],
)
def test_bad_record_keys_in_plain_s3_format(encoded, reason):
    record = minio_record()
    record["s3"]["object"]["key"] = encoded
    assert_rejected(encode({"Records": [record]}), reason)


def test_lone_surrogate_is_rejected():
    value = encode(minio_message()).replace(b'"Key": "mlpipeline/', b'"Key": "mlpipeline/\\ud800')
    assert_rejected(value, "surrogate")


def test_one_bad_record_rejects_the_whole_message():
    bad = minio_record()
    bad["s3"]["object"]["size"] = -5
    assert_rejected(encode({"Records": [minio_record(), bad]}), "Records[1].s3.object.size is negative")


def test_oversized_message_is_rejected_before_decoding():
    doc = minio_message()
    doc["Records"][0]["s3"]["object"]["userMetadata"]["x-amz-meta-blob"] = "x" * MAX_MESSAGE_BYTES
    assert_rejected(encode(doc), f"over the {MAX_MESSAGE_BYTES} byte limit")
    assert MAX_MESSAGE_BYTES == 1024 * 1024


def test_message_just_under_the_limit_is_accepted():
    doc = minio_message()
    base = len(encode(doc))
    doc["Records"][0]["s3"]["object"]["userMetadata"]["x-amz-meta-blob"] = ""
    padding = MAX_MESSAGE_BYTES - len(encode(doc))
    doc["Records"][0]["s3"]["object"]["userMetadata"]["x-amz-meta-blob"] = "x" * padding
    assert len(encode(doc)) == MAX_MESSAGE_BYTES > base
    assert parse_one(doc).key == KEY


# --- fuzzing -----------------------------------------------------------------


def _parse_or_reject(value: bytes) -> None:
    outcome, result = assert_same_both_ways(value)
    if outcome == "error":
        assert result  # every rejection carries a reason
        return
    assert isinstance(result, list)
    assert all(isinstance(e, ObjectEvent) for e in result)


def test_fuzz_random_bytes_only_raise_event_parse_error():
    rng = random.Random(20261129)
    for _ in range(3000):
        _parse_or_reject(rng.randbytes(rng.randrange(0, 200)))


def test_fuzz_mutated_valid_bytes_only_raise_event_parse_error():
    rng = random.Random(7)
    seed = encode(minio_message("läufe/a b+c/%41.txt"))
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rng.randrange(1, 6)):
            op = rng.randrange(3)
            pos = rng.randrange(len(data))
            if op == 0:
                data[pos] = rng.randrange(256)
            elif op == 1:
                del data[pos : pos + rng.randrange(1, 20)]
            else:
                data[pos:pos] = rng.choice(
                    [
                        b"{",
                        b"}",
                        b"[",
                        b"]",
                        b'"',
                        b",",
                        b":",
                        b"null",
                        b"-1",
                        b"1e999",
                        b"\\u0000",
                        b"\\ud800",
                        b"%",
                    ]
                )
        _parse_or_reject(bytes(data))


_WEIRD_VALUES = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e308,
    10**30,
    "",
    "x",
    "\x00",
    "\ud800",
    [],
    [{}],
    {},
    {"a": 1},
    "s3:ObjectCreated:*",
    "2026-11-29T06:02:43Z",
    "%ZZ",
    "mlpipeline/",
]


def _all_paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for name, child in node.items():
            yield from _all_paths(child, prefix + (name,))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from _all_paths(child, prefix + (index,))


def test_fuzz_structural_mutations_only_raise_event_parse_error():
    rng = random.Random(42)
    base = minio_message("runs/step/out put.csv")
    paths = [p for p in _all_paths(base) if p]
    for _ in range(3000):
        doc = copy.deepcopy(base)
        path = rng.choice(paths)
        target = doc
        for part in path[:-1]:
            target = target[part]
        if rng.random() < 0.2 and isinstance(target, dict):
            del target[path[-1]]
        else:
            target[path[-1]] = copy.deepcopy(rng.choice(_WEIRD_VALUES))
        _parse_or_reject(json.dumps(doc).encode("utf-8", "surrogatepass"))


# --- the fast path for MinIO's common shape ----------------------------------------


@pytest.mark.parametrize(
    "doc",
    [
        minio_message(),
        minio_message("läufe/a b+c/%41.txt", version_id="null"),
        minio_message(event_name="s3:ObjectRemoved:Delete"),
        minio_message(event_name="s3:ObjectAccessed:Get"),
        minio_message(event_name="s3:ObjectCreated:PutTagging"),
        minio_message(etag='"quoted"', sequencer="zz", size=0, content_type=None),
    ],
)
def test_the_fast_path_reads_minio_messages_as_the_general_path_does(doc):
    value = encode(doc)
    assert s3_events._parse_minio_common(orjson.loads(value), "t", 1, 7, NOW_NS) is not None  # taken
    outcome, events = assert_same_both_ways(value)
    assert outcome == "events" and len(events) == 1


@pytest.mark.parametrize(
    "doc",
    [
        {"Records": [minio_record()]},  # plain S3: no top-level Key
        {"Records": [minio_record(), minio_record("runs/s/b.txt")]},
        {**minio_message(), "EventName": "ObjectCreated:Put"},  # no "s3:" prefix
        minio_message(event_time="2026-11-29T06:02:43.123+00:00"),
        minio_message(event_time="2026-11-29T06:02:43.123456Z"),
        minio_message(event_name="s3:BucketCreated:*"),
    ],
)
def test_other_shapes_take_the_general_path(doc):
    value = encode(doc)
    assert s3_events._parse_minio_common(orjson.loads(value), "t", 1, 7, NOW_NS) is None
    assert_same_both_ways(value)


def test_fuzz_structural_mutations_read_the_same_both_ways():
    """Every field of a MinIO message set to odd values, one at a time and in pairs,
    near the clock's limit too: the fast path agrees with the general path."""
    rng = random.Random(2026)
    base = minio_message("runs/step/out put.csv")
    paths = [p for p in _all_paths(base) if p]
    values = [*_WEIRD_VALUES, "s3:ObjectRemoved:Delete", "mlpipeline/runs/x", "2026-11-29T06:02:43.999Z"]
    for _ in range(3000):
        doc = copy.deepcopy(base)
        for _ in range(rng.randrange(1, 3)):
            path = rng.choice(paths)
            target = doc
            try:
                for part in path[:-1]:
                    target = target[part]
                if rng.random() < 0.2 and isinstance(target, dict):
                    del target[path[-1]]
                else:
                    target[path[-1]] = copy.deepcopy(rng.choice(values))
            except (KeyError, IndexError, TypeError):
                continue  # the first mutation removed this path
        value = json.dumps(doc).encode("utf-8", "surrogatepass")
        assert_same_both_ways(value)
        assert_same_both_ways(value, now_ns=EVENT_TIME_NS - 3600 * 10**9)  # event time just in/out of range
