"""Tests for streaming/ingest/filer_events.py: SeaweedFS filer notification -> ObjectEvent.

The messages are built with the code generated from SeaweedFS's own
filer.proto, shaped like the ones the real filer sends (recorded by hand from
`weed server -filer -s3`; the integration tests in test_seaweedfs_ingest.py
check them against the real thing).
"""

from __future__ import annotations

import base64
import hashlib
import random
from datetime import UTC, datetime

import pytest

from runs.events import EventAction
from streaming.ingest import filer_pb2
from streaming.ingest.filer_events import MAX_MESSAGE_BYTES, parse_filer_message
from streaming.ingest.s3_events import EVENT_MAX_FUTURE_NS, SEQUENCER_MAX_SKEW_NS, EventParseError

NOW_NS = 1795971700 * 10**9  # 2026-11-29T17:01:40Z: the consumer's clock in these tests
COMMIT_NS = 1795971615687456215
RECORD_MS = 1795971615690
BUCKET = "mlpipeline"
KEY = "v2/artifacts/iris/run-1/train/0f3a/model dir/a+b %41 ü.txt"


def entry(
    name: str,
    *,
    data: bytes = b"hello",
    commit_ns: int = COMMIT_NS,
    mtime: int = COMMIT_NS // 10**9,
    mtime_ns: int = 0,
    directory: bool = False,
    etag_ext: str | None = "default",
    md5: bool = True,
    chunks: int = 1,
    mime: str = "",
) -> filer_pb2.Entry:
    e = filer_pb2.Entry(name=name, is_directory=directory, commit_ts_ns=commit_ns)
    e.attributes.mtime = mtime
    e.attributes.mtime_ns = mtime_ns
    e.attributes.mime = mime
    if directory:
        return e
    e.attributes.file_size = len(data)
    digest = hashlib.md5(data).digest()
    if md5:
        e.attributes.md5 = digest
    for i in range(chunks):
        part = hashlib.md5(data + bytes([i])).digest() if chunks > 1 else digest
        e.chunks.add(file_id=f"3,01{i}", offset=i, size=1, e_tag=base64.b64encode(part).decode())
    if etag_ext == "default":
        e.extended["Seaweed-X-Amz-ETag"] = digest.hex().encode()
    elif etag_ext is not None:
        e.extended["Seaweed-X-Amz-ETag"] = etag_ext.encode()
    return e


def note(*, old=None, new=None, parent: str = "") -> bytes:
    n = filer_pb2.EventNotification(new_parent_path=parent, signatures=[906054812])
    if old is not None:
        n.old_entry.CopyFrom(old)
    if new is not None:
        n.new_entry.CopyFrom(new)
        n.delete_chunks = old is not None
    return n.SerializeToString()


def path(key: str = KEY, bucket: str = BUCKET) -> str:
    return f"/buckets/{bucket}/{key}"


def created(key: str = KEY, **kw) -> tuple[bytes, bytes]:
    full = path(key)
    directory, _, name = full.rpartition("/")
    return full.encode(), note(new=entry(name, **kw), parent=directory)


def parse(key: bytes | None, value: bytes | None, *, ts: int | None = RECORD_MS, **kw):
    return parse_filer_message(
        value, key=key, topic="seaweedfs-events", partition=2, offset=7, timestamp_ms=ts, now_ns=NOW_NS, **kw
    )


# --- what each kind of message becomes ---------------------------------------------


def test_new_file_is_one_created_event_with_everything_from_the_entry():
    key, value = created(mime="text/plain")
    [event] = parse(key, value)
    assert event.bucket == BUCKET and event.key == KEY
    assert event.action is EventAction.CREATED
    assert event.event_name == "s3:ObjectCreated:Put"
    assert event.size == 5
    assert event.etag == hashlib.md5(b"hello").hexdigest()
    assert event.content_type == "text/plain"
    assert event.order == COMMIT_NS
    assert event.event_time == datetime.fromtimestamp(COMMIT_NS // 10**9, tz=UTC).replace(microsecond=687456)
    assert (event.topic, event.partition, event.offset) == ("seaweedfs-events", 2, 7)


def test_overwrite_is_created_with_the_new_version_and_a_higher_order():
    full = path()
    directory, _, name = full.rpartition("/")
    old = entry(name, data=b"hello")
    new = entry(name, data=b"hello2", commit_ns=COMMIT_NS + 4_000_000)
    [event] = parse(full.encode(), note(old=old, new=new, parent=directory))
    assert event.action is EventAction.CREATED
    assert event.etag == hashlib.md5(b"hello2").hexdigest()
    assert event.size == 6
    assert event.order == COMMIT_NS + 4_000_000


def test_delete_is_removed_ordered_after_the_version_it_removes():
    full = path()
    name = full.rpartition("/")[2]
    [event] = parse(full.encode(), note(old=entry(name)), ts=RECORD_MS + 100)
    assert event.action is EventAction.REMOVED
    assert (event.bucket, event.key) == (BUCKET, KEY)
    assert event.size is None and event.etag == "" and event.content_type == ""
    assert event.order == (RECORD_MS + 100) * 10**6
    # A record stamped in the same millisecond as (or before) the version: just after it.
    [same_ms] = parse(full.encode(), note(old=entry(name)), ts=COMMIT_NS // 10**6)
    assert same_ms.order == COMMIT_NS + 1


def test_delete_without_a_record_timestamp_is_ordered_just_after_the_version():
    full = path()
    [event] = parse(full.encode(), note(old=entry(full.rpartition("/")[2])), ts=None)
    assert event.order == COMMIT_NS + 1


def test_rename_is_removed_at_the_old_key_and_created_at_the_new_one():
    old_full = path("run-1/train/a b.txt")
    new_entry = entry("c d.txt", commit_ns=COMMIT_NS + 10**9)
    value = note(old=entry("a b.txt"), new=new_entry, parent=f"/buckets/{BUCKET}/run-1/eval")
    removed, made = parse(old_full.encode(), value)
    assert (removed.action, removed.key) == (EventAction.REMOVED, "run-1/train/a b.txt")
    assert (made.action, made.key) == (EventAction.CREATED, "run-1/eval/c d.txt")
    assert made.etag == hashlib.md5(b"hello").hexdigest()
    assert removed.order == made.order == COMMIT_NS + 10**9


def test_rename_into_or_out_of_the_buckets_keeps_only_the_side_that_is_an_object():
    inside = path("r/s/a.txt")
    [gone] = parse(inside.encode(), note(old=entry("a.txt"), new=entry("a.txt"), parent="/tmp/elsewhere"))
    assert (gone.action, gone.key) == (EventAction.REMOVED, "r/s/a.txt")
    [came] = parse(
        b"/tmp/elsewhere/a.txt", note(old=entry("a.txt"), new=entry("a.txt"), parent="/buckets/b2/r")
    )
    assert (came.action, came.bucket, came.key) == (EventAction.CREATED, "b2", "r/a.txt")


def test_rename_between_buckets():
    value = note(old=entry("a.txt"), new=entry("a.txt"), parent="/buckets/other/x")
    removed, made = parse(path("r/a.txt").encode(), value)
    assert (removed.bucket, removed.key, made.bucket, made.key) == (BUCKET, "r/a.txt", "other", "x/a.txt")


@pytest.mark.parametrize(
    "full",
    [
        "/buckets/mlpipeline/run 1",  # a folder
        "/buckets/mlpipeline",  # the bucket itself
        "/buckets/.system/owners/pipelens/mlpipeline",
    ],
)
def test_directories_yield_nothing(full):
    directory, _, name = full.rpartition("/")
    assert parse(full.encode(), note(new=entry(name, directory=True), parent=directory)) == []
    assert parse(full.encode(), note(old=entry(name, directory=True))) == []


@pytest.mark.parametrize(
    "full",
    [
        "/buckets/.system/owners/pipelens/mlpipeline",  # gateway bookkeeping (a file)
        "/buckets/mlpipeline/.uploads/0b92468e_01a2/0001_4fb6.part",  # a multipart part
        "/etc/passwd",
        "/bucketsx/mlpipeline/a.txt",
        "/buckets/file-at-top",
    ],
)
def test_files_outside_objects_yield_nothing(full):
    directory, _, name = full.rpartition("/")
    assert parse(full.encode(), note(new=entry(name), parent=directory)) == []
    assert parse(full.encode(), note(old=entry(name))) == []


def test_renamed_directory_yields_nothing_its_entries_have_messages_of_their_own():
    value = note(old=entry("r", directory=True), new=entry("r2", directory=True), parent="/buckets/b")
    assert parse(b"/buckets/b/r", value) == []


def test_a_custom_buckets_directory():
    value = note(new=entry("a.txt"), parent="/data/s3/b/x")
    [event] = parse(b"/data/s3/b/x/a.txt", value, buckets_dir="/data/s3")
    assert (event.bucket, event.key) == ("b", "x/a.txt")
    assert parse(b"/data/s3/b/x/a.txt", value) == []


# --- ETag: what the S3 gateway returns --------------------------------------------


def test_etag_prefers_the_stored_s3_etag_quoted_or_not():
    key, value = created(etag_ext='"7d368e72ecdd3ff1d9b28f29481a125f-2"')
    assert parse(key, value)[0].etag == "7d368e72ecdd3ff1d9b28f29481a125f-2"


def test_etag_falls_back_to_md5_then_to_the_chunks():
    key, value = created(etag_ext=None)
    assert parse(key, value)[0].etag == hashlib.md5(b"hello").hexdigest()
    key, value = created(etag_ext="", md5=False)
    assert parse(key, value)[0].etag == hashlib.md5(b"hello").hexdigest()  # one chunk: its md5
    key, value = created(etag_ext=None, md5=False, chunks=3, data=b"xyz")
    digests = b"".join(hashlib.md5(b"xyz" + bytes([i])).digest() for i in range(3))
    assert parse(key, value)[0].etag == hashlib.md5(digests).hexdigest() + "-3"


def test_etag_of_an_entry_without_content_is_empty():
    full = path("empty.txt")
    e = filer_pb2.Entry(name="empty.txt", commit_ts_ns=COMMIT_NS)
    [event] = parse(full.encode(), note(new=e, parent=full.rpartition("/")[0]))
    assert (event.etag, event.size) == ("", 0)


def test_remote_entry_etag_when_the_local_copy_holds_the_remote_bytes():
    full = path("remote.bin")
    e = filer_pb2.Entry(name="remote.bin", commit_ts_ns=COMMIT_NS)
    e.attributes.file_size = 10
    e.remote_entry.remote_e_tag = '"abc"'
    e.remote_entry.remote_size = 10
    [event] = parse(full.encode(), note(new=e, parent=full.rpartition("/")[0]))
    assert event.etag == "abc"


# --- order ---------------------------------------------------------------------------


def test_order_falls_back_to_mtime_without_a_commit_time():
    key, value = created(commit_ns=0, mtime=1795971615, mtime_ns=123)
    assert parse(key, value)[0].order == 1795971615 * 10**9 + 123


def test_order_falls_back_to_the_record_time_when_the_entry_has_none():
    key, value = created(commit_ns=0, mtime=0)
    assert parse(key, value)[0].order == RECORD_MS * 10**6
    with pytest.raises(EventParseError, match="no commit or modification time"):
        parse(key, value, ts=None)


def test_an_entry_time_far_from_the_record_time_is_not_believed():
    key, value = created(commit_ns=RECORD_MS * 10**6 - SEQUENCER_MAX_SKEW_NS - 1)
    assert parse(key, value)[0].order == RECORD_MS * 10**6
    key, value = created(commit_ns=RECORD_MS * 10**6 - SEQUENCER_MAX_SKEW_NS)
    assert parse(key, value)[0].order == RECORD_MS * 10**6 - SEQUENCER_MAX_SKEW_NS


def test_a_time_far_in_the_future_is_refused():
    key, value = created(commit_ns=NOW_NS + EVENT_MAX_FUTURE_NS + 1)
    with pytest.raises(EventParseError, match="in the future"):
        parse(key, value, ts=None)
    with pytest.raises(EventParseError, match="in the future"):
        parse(key, value, ts=(NOW_NS + EVENT_MAX_FUTURE_NS) // 10**6 + 1000)
    key, value = created(commit_ns=NOW_NS + EVENT_MAX_FUTURE_NS)
    assert parse(key, value, ts=None)[0].order == NOW_NS + EVENT_MAX_FUTURE_NS


def test_replayed_message_has_the_same_order():
    key, value = created()
    assert parse(key, value) == parse(key, value)


# --- refused ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"/buckets/b/a", None, "empty"),
        (b"/buckets/b/a", b"", "empty"),
        (b"/buckets/b/a", b"\xff\xff\xff", "not a filer EventNotification"),
        (b"/buckets/b/a", filer_pb2.EventNotification(new_parent_path="/x").SerializeToString(), "neither"),
        (None, note(new=entry("a"), parent="/buckets/b"), "no key"),
        (b"buckets/b/a", note(new=entry("a"), parent="/buckets/b"), "absolute"),
        (b"/", note(new=entry("a"), parent="/buckets/b"), "absolute"),
        (b"/buckets/b/\xff", note(new=entry("a"), parent="/buckets/b"), "UTF-8"),
        (b"/buckets/b/a\x00", note(new=entry("a"), parent="/buckets/b"), "NUL"),
        (b"/buckets/b/a", note(new=entry("other"), parent="/buckets/b"), "does not match"),
        (b"/buckets/b/a", note(old=entry("other")), "does not match"),
        (b"/buckets/b/a", note(new=entry("x/y"), parent="/buckets/b"), "not a file name"),
        (b"/buckets/b/a", note(new=entry(".."), parent="/buckets/b"), "not a file name"),
        (b"/buckets/b/a", note(new=entry(""), parent="/buckets/b"), "not a file name"),
        (b"/buckets/b/a", note(old=entry("a"), new=entry("a"), parent="relative"), "absolute"),
        (b"/buckets/b/a", note(new=entry("a", mime="x\x00y"), parent="/buckets/b"), "NUL"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(key, value, reason):
    with pytest.raises(EventParseError, match=reason):
        parse(key, value)


def test_oversized_message_is_refused_before_decoding():
    with pytest.raises(EventParseError, match="byte limit"):
        parse(b"/buckets/b/a", b"\x00" * (MAX_MESSAGE_BYTES + 1))


def test_value_of_another_type_is_refused():
    with pytest.raises(EventParseError, match="bytes"):
        parse(b"/buckets/b/a", "text")  # type: ignore[arg-type]
    with pytest.raises(EventParseError, match="bytes"):
        parse("/buckets/b/a", note(new=entry("a"), parent="/buckets/b"))  # type: ignore[arg-type]


def test_an_s3_json_message_is_refused():
    with pytest.raises(EventParseError):
        parse(b"mlpipeline/a.txt", b'{"EventName": "s3:ObjectCreated:Put", "Records": []}')


# --- fuzz: every input ends as events or an EventParseError ------------------------


def _outcome(key, value, **kw):
    try:
        events = parse(key, value, **kw)
    except EventParseError:
        return None
    for event in events:
        assert event.bucket and event.key and "\x00" not in event.key
        assert 0 < event.order <= NOW_NS + EVENT_MAX_FUTURE_NS
        assert event.size is None or 0 <= event.size < 2**63
    return events


def test_fuzz_random_bytes():
    rng = random.Random(20261129)
    for _ in range(3000):
        value = rng.randbytes(rng.randrange(0, 300))
        key = rng.choice([b"/buckets/b/a", rng.randbytes(rng.randrange(0, 40)), None])
        _outcome(key, value, ts=rng.choice([None, RECORD_MS, -1, 2**62]))


def test_fuzz_truncated_valid_messages():
    full = path()
    directory, _, name = full.rpartition("/")
    seeds = [
        note(new=entry(name, chunks=3, mime="text/csv"), parent=directory),
        note(old=entry(name), new=entry(name, data=b"other"), parent=directory),
        note(old=entry(name)),
        note(old=entry(name), new=entry("moved.txt"), parent=f"/buckets/{BUCKET}/elsewhere"),
    ]
    for seed in seeds:
        for cut in range(len(seed)):
            _outcome(full.encode(), seed[:cut])


def test_fuzz_mutated_valid_messages():
    rng = random.Random(7)
    full = path()
    directory, _, name = full.rpartition("/")
    seed = note(old=entry(name), new=entry(name, chunks=2), parent=directory)
    for _ in range(3000):
        data = bytearray(seed)
        for _ in range(rng.randrange(1, 6)):
            op = rng.random()
            pos = rng.randrange(len(data)) if data else 0
            if op < 0.5 and data:
                data[pos] = rng.randrange(256)
            elif op < 0.75:
                data[pos:pos] = rng.randbytes(rng.randrange(1, 8))
            elif data:
                del data[pos : pos + rng.randrange(1, 8)]
        _outcome(full.encode(), bytes(data))


def test_fuzz_valid_messages_with_absurd_fields():
    rng = random.Random(42)
    absurd_ints = [0, 1, -1, 2**31 - 1, -(2**31), 2**62, 2**63 - 1, -(2**63), NOW_NS, COMMIT_NS]
    absurd_names = ["a", "", ".", "..", "a/b", "\x00", "ü" * 300, "x" * 5000, ".uploads", " ", "%2F"]
    for _ in range(2000):
        e = filer_pb2.Entry(name=rng.choice(absurd_names), is_directory=rng.random() < 0.1)
        e.commit_ts_ns = rng.choice(absurd_ints)
        e.attributes.mtime = rng.choice(absurd_ints)
        e.attributes.mtime_ns = rng.choice([0, -5, 10**9, 2**31 - 1, 5])
        e.attributes.file_size = rng.choice([0, 1, 2**64 - 1, 2**63])
        e.attributes.mime = rng.choice(["", "text/plain", "a\x00b", "é" * 1000])
        if rng.random() < 0.5:
            e.attributes.md5 = rng.randbytes(rng.randrange(0, 40))
        for _ in range(rng.randrange(0, 4)):
            e.chunks.add(
                offset=rng.choice(absurd_ints),
                size=rng.choice([0, 1, 2**64 - 1]),
                e_tag=rng.choice(["", "!!!", "XUFAKrxLKna5cZ2REBfFkg==", "=" * 7]),
            )
        if rng.random() < 0.3:
            e.extended["Seaweed-X-Amz-ETag"] = rng.randbytes(rng.randrange(0, 20))
        if rng.random() < 0.2:
            e.remote_entry.remote_e_tag = rng.choice(["", "x", '"y"'])
            e.remote_entry.remote_size = rng.choice(absurd_ints)
        parent = rng.choice(["", "/", "/buckets", "/buckets/b", "relative", "/buckets/b/\x00", "/buckets//x"])
        shape = rng.randrange(3)
        value = note(
            old=e if shape != 0 else None,
            new=e if shape != 2 else None,
            parent=parent,
        )
        key = rng.choice([b"/buckets/b/" + e.name.encode(), b"/buckets/b/a", b"/" + e.name.encode()])
        _outcome(key, value, ts=rng.choice([None, RECORD_MS, 0, 2**62, -(2**40)]))
