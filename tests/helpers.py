"""Helpers every kind of test uses: wait for a condition, put an object into the real
object store, the pytest database's URL for subprocesses. One place for each."""

import io
import time

import pytest


def wait_for(predicate, *, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def put(minio, bucket: str, key: str, data: bytes = b"hello", content_type: str = "application/octet-stream"):
    """Upload ``data`` as ``bucket/key`` through the real client, as a pipeline step would."""
    return minio.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)


def database_url(port: int | None = None, *, application_name: str = "") -> str:
    """The URL of the pytest database, for subprocesses (consumer, worker, daphne, web-app server);
    ``port`` reaches it through a proxy, ``application_name`` marks the subprocess's sessions."""
    from django.db import connection

    s = connection.settings_dict
    url = f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{port or s['PORT']}/{s['NAME']}"
    return url + (f"?application_name={application_name}" if application_name else "")
