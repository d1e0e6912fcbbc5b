"""Health page server time with 100 buckets and 1,000,000 artifacts (issue 9 item 5: < 200 ms).

Seeds its own database (``<db>_bench_health``) once with SQL ``generate_series``
(not through the ingest path, which would take many minutes): 100 buckets on
3 topics, 1,000 runs, 1,000,000 artifacts with one rendition each (1 % failed,
half of those in the last hour), an hour of per-minute event counts per bucket,
10,000 ingest errors, five sweeps per bucket and three consumer heartbeats. Then renders
``/admin/runs/consumerheartbeat/`` through the whole Django stack in-process
with the test client (as bench/run_page.py does), Redis queue lengths included.
Run with ``make bench B=health``.
"""

import os
import time

from _common import median, percentile, report, server_times, setup_django

BUCKETS = 100
ARTIFACTS = int(os.environ.get("BENCH_ARTIFACTS", "1000000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50"))
ERRORS = 10_000


def seed() -> float:
    """Fill the database once; returns the seconds it took (0 when already there)."""
    from django.db import connection

    from runs.models import Artifact, IngestError, Rendition

    # A seed interrupted half-way (each statement commits on its own) is redone whole.
    if (Artifact.objects.count(), Rendition.objects.count(), IngestError.objects.count()) == (
        ARTIFACTS,
        ARTIFACTS,
        ERRORS,
    ):
        return 0.0
    started = time.monotonic()
    runs = BUCKETS * 10
    with connection.cursor() as c:
        # Artifacts, runs and steps reference buckets without database constraints: named explicitly.
        c.execute(
            "TRUNCATE runs_kafkatopic, runs_bucket, runs_run, runs_step, runs_artifact, runs_rendition,"
            " runs_ingesterror, runs_consumerheartbeat CASCADE"
        )
        c.execute(
            "INSERT INTO runs_kafkatopic (name, message_format, bootstrap_servers, enabled, partitions,"
            " replication_factor, retention_ms, notes, created_at, updated_at)"
            " SELECT 'bench-health-' || i, 's3', '', true, 4, 1, NULL, '', now(), now()"
            " FROM generate_series(0, 2) i"
        )
        c.execute(
            "INSERT INTO runs_bucket (name, store, topic_id, layouts, notify_arn, prefix_filter,"
            " suffix_filter, event_names, notification_status, notification_error, last_event_at, created_at)"
            " SELECT 'bench-health-' || lpad(i::text, 3, '0'), 'default',"
            " (SELECT min(id) FROM runs_kafkatopic) + i %% 3, '[\"generic\"]', '', '', '', '[]',"
            " 'configured', '', now() - (i || ' seconds')::interval, now() FROM generate_series(0, %s) i",
            [BUCKETS - 1],
        )
        c.execute(
            "INSERT INTO runs_run (bucket_id, run_key, name, pipeline, namespace, layout, status,"
            " first_event_at, last_event_at, artifact_count, seq)"
            " SELECT b.id, 'run-' || r, 'run-' || r, '', '', 'generic', 'active', now(), now(), 0, 0"
            " FROM generate_series(0, %s) r JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n"
            " FROM runs_bucket) b ON b.n = r %% %s",
            [runs - 1, BUCKETS],
        )
        c.execute(
            "INSERT INTO runs_step (run_id, name, status, first_event_at, last_event_at, artifact_count)"
            " SELECT id, 'train', 'active', now(), now(), 0 FROM runs_run"
        )
        c.execute(
            "CREATE TEMP TABLE seed_runs AS SELECT row_number() OVER (ORDER BY r.id) - 1 AS n,"
            " r.id AS run_id, s.id AS step_id, r.bucket_id"
            " FROM runs_run r JOIN runs_step s ON s.run_id = r.id"
        )
        c.execute(
            "INSERT INTO runs_artifact (run_id, step_id, bucket_id, key, name, kind, size, etag,"
            " content_type, version_id, sequencer, event_order, event_time, deleted, created_at, updated_at)"
            " SELECT s.run_id, s.step_id, s.bucket_id, 'run-' || s.n || '/train/file-' || i || '.csv',"
            " 'file-' || i || '.csv', 'table', 1000, 'etag-' || i, 'text/csv', '', '', i, now(), false,"
            " now(), now() FROM generate_series(0, %s) i JOIN seed_runs s ON s.n = i %% %s",
            [ARTIFACTS - 1, runs],
        )
        # One rendition per artifact; 1 % failed, half of those within the last hour.
        c.execute(
            "INSERT INTO runs_rendition (artifact_id, etag, position, viewer, title, status, payload,"
            " preview_key, error, attempts, created_at, updated_at)"
            " SELECT id, etag, 0, CASE WHEN id %% 3 = 0 THEN 'table' ELSE 'text' END, '',"
            " CASE WHEN id %% 100 = 0 THEN 'failed' ELSE 'ready' END, '{}', '', '', 1,"
            " now() - interval '2 hours', now() - CASE WHEN id %% 200 = 0 THEN interval '10 minutes'"
            " ELSE interval '2 hours' END FROM runs_artifact WHERE %s",
            [True],
        )
        c.execute(
            'INSERT INTO runs_ingesterror (topic, partition, "offset", message_key, raw, error, created_at)'
            " SELECT 'bench-health-' || i %% 3, 0, i, NULL, convert_to('{\"Records\": []}', 'UTF8'),"
            " 'bucket ''gone-' || i %% 7 || ''' is not registered in Pipelens',"
            " now() - (i || ' seconds')::interval FROM generate_series(1, %s) i",
            [ERRORS],
        )
        c.execute("ANALYZE")
    return time.monotonic() - started


def refresh_live_rows() -> None:
    """The last hour's per-minute counters and heartbeats, relative to now."""
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from runs.services.health import consumer_heartbeat

    with connection.cursor() as c:
        c.execute("TRUNCATE runs_bucketminute, runs_consumerheartbeat, runs_bucketsweep")
        # Five finished sweeps per bucket (the page shows each bucket's latest).
        c.execute(
            "INSERT INTO runs_bucketsweep (bucket_id, prefix, reason, status, lazy_render, since, started_at,"
            " cursor, listed, stored, deleted, rejected, error, requested_at, finished_at, updated_at)"
            " SELECT b.id, '', 'recent', 'done', false, NULL, now() - (k || ' minutes')::interval, '',"
            " 1000, k, 0, 0, '', now() - (k || ' minutes')::interval, now() - (k || ' minutes')::interval,"
            " now() FROM runs_bucket b CROSS JOIN generate_series(1, %s) k",
            [5],
        )
        c.execute(
            "INSERT INTO runs_bucketminute (bucket_id, minute, events)"
            " SELECT b.id, date_trunc('minute', now()) - (m || ' minutes')::interval, 10 + (b.id + m) %% 50"
            " FROM runs_bucket b CROSS JOIN generate_series(0, %s) m",
            [59],
        )
    now = timezone.now()
    topics = [f"bench-health-{i}" for i in range(3)]
    for pid in range(3):
        consumer_heartbeat(
            hostname=f"consumer-{pid}",
            pid=1000 + pid,
            group="pipelens-ingest",
            started_at=now - timedelta(hours=1),
            topics=topics,
            lag={t: pid * 10 for t in topics},
            now=now - timedelta(seconds=5 if pid else 300),
        )


def main() -> None:
    setup_django("bench_health")
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    seeded_s = seed()
    refresh_live_rows()

    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.is_staff = user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    url = "/admin/runs/consumerheartbeat/"
    for _ in range(3):
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    page = response.content.decode()
    assert page.count("<polyline") == BUCKETS, "every bucket has its chart"
    queries = []
    with connection.execute_wrapper(lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)):
        client.get(url)
    timings = server_times(client, url, REQUESTS)
    report(
        {
            "buckets": BUCKETS,
            "artifacts": ARTIFACTS,
            "ingest_errors": ERRORS,
            "requests": REQUESTS,
            "queries": len(queries),
            "html_kb": round(len(response.content) / 1024),
            "seed_s": round(seeded_s, 1),
            "p50_ms": round(median(timings), 1),
            "p99_ms": round(percentile(timings, 99), 1),
        }
    )


if __name__ == "__main__":
    main()
