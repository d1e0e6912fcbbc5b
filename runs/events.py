"""The event type the ingest service takes: one object-level change in a bucket.

Parsers in ``streaming.ingest`` turn Kafka messages (MinIO/S3 JSON today)
into these; ``runs.services.ingest`` stores them. Living in ``runs`` keeps the
arrows one way: ``streaming -> runs``, never back.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class EventAction(enum.StrEnum):
    """What an event means for the artifact stored under its key."""

    CREATED = "created"  # new content under the key
    REMOVED = "removed"  # the key no longer shows an object
    ACCESSED = "accessed"  # a read: noise for Pipelens, counted only
    METADATA = "metadata"  # tags, retention, tiering, replication: content unchanged


# Probes (docs/operations.md#probe) put their objects in a folder of this name,
# under the bucket's prefix filter so that the bucket's notification covers
# them. Both paths that turn objects into rows, the consumer and the
# reconciler, drop every key holding this segment: a probe never becomes a
# run, an artifact or an IngestError, not even one left behind.
PROBE_SEGMENT = ".pipelens-probe"


def is_probe_key(key: str) -> bool:
    """Whether ``key`` lies in a probe folder (any path segment named ``PROBE_SEGMENT``)."""
    return f"/{PROBE_SEGMENT}/" in f"/{key}"


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One object-level event of one Kafka message, ready for layout resolution."""

    bucket: str
    key: str  # decoded object key
    action: EventAction
    event_name: str  # always with the "s3:" prefix, e.g. "s3:ObjectCreated:Put"
    event_time: datetime  # timezone-aware UTC
    order: int  # newer wins; sequencer or event time, both in ns since the epoch
    size: int | None = None
    etag: str = ""  # without surrounding quotes
    content_type: str = ""
    version_id: str = ""
    sequencer: str = ""
    topic: str = ""
    partition: int = -1
    offset: int = -1


@dataclass(frozen=True, slots=True)
class RejectedMessage:
    """A Kafka message, or one event of it, that will become an IngestError row."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    raw: bytes | None
    error: str
