"""Run page server time with 1,000 artifacts (issue 3 target: <= 200 ms).

Renders ``/runs/<id>/`` through the whole Django stack in-process (middleware,
session, access check, three data queries, templates, including each
artifact's preview partial) with the test client, so the figure is server
time without the network. Run with ``make bench B=run_page``.
"""

import os
from datetime import UTC

from _common import median, percentile, report, server_times, setup_django

ARTIFACTS = int(os.environ.get("BENCH_ARTIFACTS", "1000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50"))


def main() -> None:
    setup_django("bench")
    from datetime import datetime, timedelta

    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from runs.events import EventAction, ObjectEvent
    from runs.models import Bucket, Rendition, Run
    from runs.services.ingest import ingest_events

    bucket, _ = Bucket.objects.get_or_create(name="bench-run-page")
    run_key = f"page-{ARTIFACTS}"
    if not Run.objects.filter(bucket=bucket, run_key=run_key, artifact_count=ARTIFACTS).exists():
        start = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
        events = []
        for i in range(ARTIFACTS):
            at = start + timedelta(milliseconds=i)
            order = int(at.timestamp() * 1e9)
            events.append(
                ObjectEvent(
                    bucket=bucket.name,
                    key=f"{run_key}/step-{i % 10:02d}/output-{i:04d}.csv",
                    action=EventAction.CREATED,
                    event_name="s3:ObjectCreated:Put",
                    event_time=at,
                    order=order,
                    size=1000 + i,
                    etag=f"etag-{i}",
                    content_type="text/csv",
                    sequencer=f"{order:X}",
                    topic="bench",
                    partition=0,
                    offset=i,
                )
            )
        ingest_events(events=events)
    run = Run.objects.get(bucket=bucket, run_key=run_key)
    # A third of the artifacts with a finished rendition, as a run page shows mid-run.
    for artifact in run.artifacts.filter(renditions__isnull=True)[: ARTIFACTS // 3]:
        Rendition.objects.create(artifact=artifact, etag=artifact.etag, viewer="other", status="ready")

    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    url = f"/runs/{run.pk}/"
    for _ in range(3):
        assert client.get(url).status_code == 200
    timings = []
    queries = []
    # Counted with a wrapper: Django clears connection.queries at each request start.
    with connection.execute_wrapper(lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)):
        response = client.get(url)
    size = len(response.content)
    timings += server_times(client, url, REQUESTS)
    report(
        {
            "artifacts": ARTIFACTS,
            "requests": REQUESTS,
            "queries": len(queries),
            "html_kb": round(size / 1024),
            "p50_ms": round(median(timings), 1),
            "p99_ms": round(percentile(timings, 99), 1),
        }
    )


if __name__ == "__main__":
    main()
