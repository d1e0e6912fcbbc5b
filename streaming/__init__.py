"""Pipelens' two streams, one subpackage per direction (docs/architecture.md).

- ``streaming.ingest``: Kafka in. Messages are parsed into ``runs.events``
  and stored through ``runs.services.ingest`` by the consume loop
  (``manage.py consume_events``).
- ``streaming.live``: browsers out. Committed changes
  (``runs.services.changes``) are pushed to WebSocket groups.

Both depend on ``runs``; ``runs`` depends on neither.
"""
