"""Ingest errors staff asked to retry, parsed again (docs/operations.md#health).

The console only marks the rows (``runs.services.health.ingest_errors_retry_request``):
parsing a stored message needs its topic's parser, which lives here. The
consumer's maintenance thread calls ``retry_requested`` every
INGEST_RETRY_POLL_S; the service stores what now succeeds and keeps, with the
new reason, what still fails.
"""

from __future__ import annotations

from runs.events import ObjectEvent
from runs.models import IngestError, KafkaTopic
from runs.selectors.health import ingest_errors_retry_pending, topic_formats
from runs.services.health import RetryResult, ingest_errors_retried
from streaming.ingest.filer_events import parse_filer_message
from streaming.ingest.s3_events import EventParseError, parse_message


def parse_stored(error: IngestError, message_format: str) -> list[ObjectEvent] | str:
    """The stored message's events, or why it still cannot be parsed."""
    if error.raw is None:
        return "no message was kept (nothing to parse again): " + error.error
    value = bytes(error.raw)
    key = bytes(error.message_key) if error.message_key is not None else None
    coords = {"key": key, "topic": error.topic, "partition": error.partition, "offset": error.offset}
    try:
        if message_format == KafkaTopic.MessageFormat.SEAWEEDFS_FILER:
            return parse_filer_message(value, **coords)
        return parse_message(value, **coords)
    except EventParseError as exc:
        return str(exc)


def retry_requested(*, limit: int = 200) -> RetryResult:
    """One round: parse the marked errors again and hand the outcome to the service."""
    pending = ingest_errors_retry_pending(limit=limit)
    if not pending:
        return RetryResult()
    formats = topic_formats()
    return ingest_errors_retried(outcomes={e.pk: parse_stored(e, formats.get(e.topic, "")) for e in pending})
