"""Writes to the runs database: the only code that writes, and the only code
that triggers side effects (broadcasts, render tasks), always after commit.

One module per sub-domain; import from the module that owns the function:
- ``ingest``: ``ingest_events`` (one consumer batch, one transaction);
- ``buckets``: bucket registration and MinIO notification set-up.
"""
