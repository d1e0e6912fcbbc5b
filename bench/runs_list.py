"""Runs list server time with millions of artifacts (issue 10: "runs list pages stay fast
with millions of artifacts", e.g. after a backfill). Run with ``make bench B=runs_list``.

Seeds once, with SQL (the ingest path is measured by bench/ingest.py and
bench/backfill.py): BENCH_RUNS runs (default 2,000) of 10 steps each, 100
artifacts per step (2,000,000 artifacts), a third of the runs idle. Then renders
``/runs/`` through the whole Django stack in-process (test client) as a
superuser and as a user with one grant: first page, a status filter, a search,
a late page. Server time, without the network; no target was given beyond
"fast", so the run page's 200 ms is the yardstick.
"""

from __future__ import annotations

import os
import time

from _common import median, percentile, report, server_times, setup_django

RUNS = int(os.environ.get("BENCH_RUNS", "2000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))
BUCKET = "bench-runs-list"


def seed() -> None:
    from django.db import connection, transaction

    from runs.models import Artifact, Bucket, Run

    bucket, _ = Bucket.objects.get_or_create(name=BUCKET)
    if (
        Run.objects.filter(bucket=bucket).count() == RUNS
        and Artifact.objects.filter(bucket=bucket).count() == RUNS * 1000
    ):
        print(f"reusing {BUCKET}: {RUNS:,} runs, {RUNS * 1000:,} artifacts")
        return
    print(f"seeding {RUNS:,} runs and {RUNS * 1000:,} artifacts (once)")
    started = time.monotonic()
    Run.objects.filter(bucket=bucket).delete()
    Artifact.objects.filter(bucket=bucket).delete()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO runs_run (bucket_id, run_key, name, pipeline, namespace, layout, status,
                                  first_event_at, last_event_at, artifact_count, seq)
            SELECT %s, 'run-' || g, 'train-run-' || g, 'pipeline-' || (g %% 20), '', 'generic',
                   CASE WHEN g %% 3 = 0 THEN 'idle' ELSE 'active' END,
                   now() - g * interval '1 minute', now() - g * interval '1 minute' + interval '30 s',
                   1000, 1
            FROM generate_series(1, %s) AS g
            """,
            [bucket.pk, RUNS],
        )
        cursor.execute(
            """
            INSERT INTO runs_step (run_id, name, status, first_event_at, last_event_at, artifact_count)
            SELECT r.id, 'step-' || s, 'active', r.first_event_at, r.last_event_at, 100
            FROM runs_run r, generate_series(0, 9) AS s WHERE r.bucket_id = %s
            """,
            [bucket.pk],
        )
        cursor.execute(
            """
            INSERT INTO runs_artifact (run_id, step_id, bucket_id, key, name, kind, size, etag,
                                       content_type, version_id, sequencer, event_order, event_time,
                                       deleted, created_at, updated_at)
            SELECT st.run_id, st.id, %s, r.run_key || '/' || st.name || '/file-' || a || '.csv',
                   'file-' || a || '.csv', 'table', 100, md5(st.id || '-' || a), 'text/csv', '', '',
                   1, r.last_event_at, false, now(), now()
            FROM runs_step st JOIN runs_run r ON r.id = st.run_id, generate_series(1, 100) AS a
            WHERE r.bucket_id = %s
            """,
            [bucket.pk, bucket.pk],
        )
        cursor.execute("ANALYZE runs_run; ANALYZE runs_step; ANALYZE runs_artifact")
    print(f"seeded in {time.monotonic() - started:.0f} s")


def main() -> None:
    setup_django("bench")
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    from runs.models import Artifact, Bucket
    from runs.services.access import bucket_grant_create

    seed()
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_superuser": True})
    reader, _ = User.objects.get_or_create(username="bench-reader")
    group, _ = Group.objects.get_or_create(name="bench-readers")
    reader.groups.add(group)
    bucket = Bucket.objects.get(name=BUCKET)
    if not bucket.grants.filter(group=group).exists():
        bucket_grant_create(group=group, bucket=bucket)
    figures = {"runs": RUNS, "artifacts": Artifact.objects.filter(bucket=bucket).count()}
    for who, user in (("admin", admin), ("reader", reader)):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        for name, url in (
            ("first", "/"),
            ("idle", "/?status=idle"),
            ("search", "/?q=train-run-17"),
            ("page_30", "/?page=30"),
        ):
            client.get(url)  # warm
            times = server_times(client, url, REQUESTS)
            figures[f"{who}_{name}_p50_ms"] = round(median(times), 1)
            figures[f"{who}_{name}_p99_ms"] = round(percentile(times, 99), 1)
    report(figures)


if __name__ == "__main__":
    main()
