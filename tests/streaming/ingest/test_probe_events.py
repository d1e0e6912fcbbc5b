"""Probe events leave the stream in parse_batch, before resolution (docs/operations.md#probe):
the consumer's one filter. Pure: Kafka messages stand in as small objects."""

from __future__ import annotations

from datetime import UTC, datetime

from runs.events import PROBE_SEGMENT, is_probe_key
from streaming.ingest.kafka_loop import parse_batch
from streaming.live.groups import probe_group
from streaming.live.messages import ProbeArrived
from tests.streaming.ingest.test_s3_events import encode, minio_message

CREATE_TIME = 1, 1_800_000_000_123  # (TIMESTAMP_CREATE_TIME, ms)


class Message:
    def __init__(self, value: bytes, offset: int, timestamp=CREATE_TIME):
        self._value, self._offset, self._timestamp = value, offset, timestamp

    def error(self):
        return None

    def topic(self):
        return "events"

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def key(self):
        return None

    def value(self):
        return self._value

    def timestamp(self):
        return self._timestamp


def _removed(key: str) -> bytes:
    return encode(minio_message(key, event_name="s3:ObjectRemoved:Delete"))


def test_probe_keys_are_any_key_with_the_reserved_segment():
    assert is_probe_key(f"{PROBE_SEGMENT}/abc.txt")
    assert is_probe_key(f"exp/{PROBE_SEGMENT}/abc.csv")
    assert not is_probe_key(f"exp{PROBE_SEGMENT}/abc.csv")
    assert not is_probe_key(f"exp/{PROBE_SEGMENT}x/abc.csv")
    assert not is_probe_key("run-1/train/a.txt")


def test_probe_events_are_taken_out_of_the_batch_with_their_kafka_timestamp():
    probe = f"exp/{PROBE_SEGMENT}/p1.csv"
    batch = parse_batch(
        [
            Message(encode(minio_message(probe)), 0),
            Message(encode(minio_message("run-1/train/a.txt")), 1),
            Message(_removed(probe), 2),
        ]
    )

    assert [e.key for e in batch.events] == ["run-1/train/a.txt"]
    assert [(p.key, p.topic) for p in batch.probes] == [(probe, "events")]  # the delete: dropped
    assert batch.probes[0].topic_at == datetime.fromtimestamp(1_800_000_000.123, UTC)
    assert batch.offsets == {("events", 0): 3}  # committed like every other message
    assert not batch.rejected


def test_a_record_without_timestamp_leaves_the_topic_hop_unknown():
    batch = parse_batch([Message(encode(minio_message(f"{PROBE_SEGMENT}/p.txt")), 0, timestamp=(0, -1))])
    assert batch.probes[0].topic_at is None


def test_probe_message_and_group():
    assert ProbeArrived(probe_id=7).as_dict() == {"type": "probe.arrived", "probe_id": 7}
    assert probe_group(7) == "probe.7"
