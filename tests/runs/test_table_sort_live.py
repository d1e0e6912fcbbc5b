"""Table sorting happens in the worker; the portal process reads one page (issue 8, finding 4).

Before: every sorted page request read and parsed the whole file (up to
TABLE_SORT_MAX_BYTES) in the portal process, uncached. Now the first request
queues the sorted copy's build and answers 202; the real worker builds it;
every page after that is one small ranged read. Heavy viewer reads beyond
VIEWER_MAX_CONCURRENT_READS answer 503 "busy, retry" at once.
"""

import io
import random

import pytest
from django.test import Client
from django.urls import reverse

from runs.models import Artifact, Rendition
from runs.storage import ObjectSource
from tests.factories import BucketFactory
from tests.helpers import wait_for
from tests.runs.portal_helpers import ingest, user_with_grant

MiB = 1024 * 1024


def rows_url(r: Rendition) -> str:
    return reverse("viewers:table_rows", args=[r.artifact.run_id, r.artifact_id, r.pk])


@pytest.fixture
def bytes_read_here(monkeypatch):
    """Bytes this (the portal's) process reads from object storage through ObjectSource."""
    counted = {"bytes": 0}
    original = ObjectSource._stream

    def counting(self, offset, length, chunk_size):
        for chunk in original(self, offset, length, chunk_size):
            counted["bytes"] += len(chunk)
            yield chunk

    monkeypatch.setattr(ObjectSource, "_stream", counting)
    return counted


def test_sorting_runs_in_the_worker_and_the_portal_reads_one_page(
    minio, live_bucket, running_consumer, celery_worker_process, django_user_model, bytes_read_here
):
    rng = random.Random(4)
    scores = [rng.random() for _ in range(40_000)]
    data = b"id,score,note\n" + b"".join(
        b"%d,%.9f,some words for row %d\n" % (i, s, i) for i, s in enumerate(scores)
    )
    assert len(data) > 1.5 * MiB
    minio.put_object(
        live_bucket.name, "sort/run/prep/big.csv", io.BytesIO(data), len(data), content_type="text/csv"
    )
    table = wait_for(
        lambda: Rendition.objects.filter(
            artifact__key="sort/run/prep/big.csv", status="ready", payload__indexed=True
        ).first(),
        timeout=60,
        what="the table rendition",
    )
    assert table.payload["sortable"]
    client = Client()
    client.force_login(user_with_grant(django_user_model, "ana", live_bucket))
    query = {"start": 0, "count": 5, "sort": 1, "desc": "1"}

    first = client.get(rows_url(table), query)
    assert first.status_code == 202 and first.json()["pending"]
    assert bytes_read_here["bytes"] == 0  # the portal read nothing of the file
    page = wait_for(
        lambda: (r := client.get(rows_url(table), query)).status_code == 200 and r.json(),
        timeout=60,
        what="the sorted copy",
    )
    best = sorted(range(len(scores)), key=lambda i: scores[i], reverse=True)
    assert [row[0] for row in page["rows"]] == [str(i) for i in best[:5]]
    bytes_read_here["bytes"] = 0
    page = client.get(rows_url(table), {"start": 20_000, "count": 50, "sort": 1}).json()
    assert [row[0] for row in page["rows"]] == [str(i) for i in best[::-1][20_000:20_050]]
    assert bytes_read_here["bytes"] < 64 * 1024, bytes_read_here  # ~3 KB of rows, never the 2 MB file


def test_a_sort_the_broker_cannot_take_is_a_reason_and_is_asked_again(db, monkeypatch):
    from types import SimpleNamespace

    from runs.rendering.base import RenderError
    from runs.services import table_sort

    bucket = BucketFactory()
    ingest(bucket, "r/s/t.csv")
    artifact = Artifact.objects.get(key="r/s/t.csv")
    rendition = Rendition.objects.create(
        artifact=artifact, etag=artifact.etag, viewer="table", status="ready", payload={"sortable": True}
    )

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(table_sort, "current_app", SimpleNamespace(send_task=down))
    with pytest.raises(RenderError, match="could not be queued"):
        table_sort.request_sort(rendition=rendition, column=0)
    queued = []
    monkeypatch.setattr(
        table_sort, "current_app", SimpleNamespace(send_task=lambda name, **kw: queued.append((name, kw)))
    )
    assert table_sort.request_sort(rendition=rendition, column=0)  # not swallowed by the 30 s memo
    assert not table_sort.request_sort(rendition=rendition, column=0)
    assert len(queued) == 1 and queued[0][0] == table_sort.TABLE_SORT_TASK


def test_heavy_reads_beyond_the_limit_answer_busy_at_once(db, django_user_model, settings):
    from runs.rendering.readback import reads_semaphore

    settings.VIEWER_MAX_CONCURRENT_READS = 2
    bucket = BucketFactory()
    ingest(bucket, "r/s/t.csv", "r/s/main.log")
    table_artifact = Artifact.objects.get(key="r/s/t.csv")
    log_artifact = Artifact.objects.get(key="r/s/main.log")
    source = {"bucket": bucket.name, "key": "r/s/t.csv", "etag": "e"}
    table = Rendition.objects.create(
        artifact=table_artifact,
        etag=table_artifact.etag,
        viewer="table",
        status="ready",
        payload={
            "columns": [{"name": "a", "type": "integer"}],
            "indexed": True,
            "sortable": True,
            "source": source,
            "size": 10,
            "row_count": 1,
        },
    )
    log = Rendition.objects.create(
        artifact=log_artifact,
        etag=log_artifact.etag,
        viewer="text",
        status="ready",
        payload={"source": source, "size": 10, "start": 5},
    )
    client = Client()
    client.force_login(user_with_grant(django_user_model, "ana", bucket))
    semaphore = reads_semaphore()
    held = [semaphore.acquire(blocking=False) for _ in range(2)]
    try:
        assert all(held)
        for url, query in [
            (rows_url(table), {"start": 0}),
            (rows_url(table), {"sort": 0}),
            (
                reverse("viewers:text_earlier", args=[log.artifact.run_id, log.artifact_id, log.pk]),
                {"before": 5},
            ),
        ]:
            response = client.get(url, query)
            assert response.status_code == 503 and response["Retry-After"] == "1", url
            assert response.json()["retry"] is True and "busy" in response.json()["error"]
    finally:
        for _ in held:
            semaphore.release()
