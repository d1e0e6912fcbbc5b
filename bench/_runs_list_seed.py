"""Seed for bench/runs_list.py: 200,000 runs / 5,000,000 artifacts straight into PostgreSQL.

SQL ``generate_series``, not the ingest path (bench/ingest.py measures that).
Run ``g`` (1..RUNS) is in bucket ``bench-list-<g % 10>``, namespace
``ns-<g % 25>``, has 5 steps of 5 artifacts each (25 per run), and
``last_event_at`` = now - g/2 minutes, so pairs of runs tie on it (the id
tiebreak of keyset pages is exercised). 60 % are idle, the rest succeeded,
failed, running or active. 90 % have a ready METRICS rendition (accuracy,
loss, and f1 on half of them); 10 % a progress rendition. ``runs_runmetric``
is not seeded here: the migration's backfill (or ``run_metrics_backfill``)
builds it from the renditions, which measures the backfill too.
"""

from __future__ import annotations

import time

BUCKETS = 10
STEPS = 5
PER_STEP = 5
PREFIX = "bench-list-"


def seeded(runs: int) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM runs_run r JOIN runs_bucket b ON b.id = r.bucket_id WHERE b.name LIKE %s",
            [PREFIX + "%"],
        )
        (have,) = cursor.fetchone()
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'runs_artifact'")
        (artifacts,) = cursor.fetchone()
    return have == runs and artifacts >= runs * STEPS * PER_STEP * 0.9


def seed(runs: int) -> float:
    """Seed once; returns the seconds it took (0 when reused)."""
    from django.db import connection, transaction

    from runs.models import Artifact, Bucket, Rendition, Run, Step

    if seeded(runs):
        print(f"reusing the seeded {runs:,} runs")
        return 0.0
    print(f"seeding {runs:,} runs and {runs * STEPS * PER_STEP:,} artifacts (once)")
    started = time.monotonic()
    buckets = [Bucket.objects.get_or_create(name=f"{PREFIX}{i}")[0] for i in range(BUCKETS)]
    ids = [b.pk for b in buckets]
    Rendition.objects.filter(artifact__bucket_id__in=ids).delete()
    Artifact.objects.filter(bucket_id__in=ids).delete()
    Step.objects.filter(run__bucket_id__in=ids).delete()
    Run.objects.filter(bucket_id__in=ids).delete()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO runs_run (bucket_id, run_key, name, pipeline, namespace, layout, status,
                                  first_event_at, last_event_at, artifact_count, seq)
            SELECT (%s::bigint[])[1 + g %% 10], 'run-' || g, 'train-run-' || g, 'pipeline-' || (g %% 50),
                   'ns-' || (g %% 25), 'generic',
                   CASE WHEN g %% 20 < 12 THEN 'idle' WHEN g %% 20 < 16 THEN 'succeeded'
                        WHEN g %% 20 < 18 THEN 'failed' WHEN g %% 20 = 18 THEN 'running' ELSE 'active' END,
                   now() - (g / 2) * interval '1 minute' - interval '1 hour',
                   now() - (g / 2) * interval '1 minute', %s, 1
            FROM generate_series(1, %s) AS g
            """,
            [ids, STEPS * PER_STEP, runs],
        )
        print(f"  runs {time.monotonic() - started:.0f} s")
        cursor.execute(
            """
            INSERT INTO runs_step (run_id, name, status, first_event_at, last_event_at, artifact_count)
            SELECT r.id, 'step-' || s, 'idle', r.first_event_at, r.last_event_at, %s
            FROM runs_run r, generate_series(0, %s) AS s WHERE r.bucket_id = ANY(%s)
            """,
            [PER_STEP, STEPS - 1, ids],
        )
        print(f"  steps {time.monotonic() - started:.0f} s")
        # The last step's first file is the run's mlpipeline-metrics.json.
        cursor.execute(
            """
            INSERT INTO runs_artifact (run_id, step_id, bucket_id, key, name, kind, size, etag,
                                       content_type, version_id, sequencer, event_order, event_time,
                                       deleted, created_at, updated_at)
            SELECT st.run_id, st.id, r.bucket_id, r.run_key || '/' || st.name || '/' || f.name,
                   f.name, f.kind, 100, md5(st.id || '-' || a), 'text/csv', '', '',
                   1, r.last_event_at, false, now(), now()
            FROM runs_step st JOIN runs_run r ON r.id = st.run_id, generate_series(1, %s) AS a,
                 LATERAL (SELECT CASE WHEN st.name = %s AND a = 1 THEN 'mlpipeline-metrics.json'
                                      ELSE 'file-' || a || '.csv' END AS name,
                                 CASE WHEN st.name = %s AND a = 1 THEN 'kfp_metrics'
                                      ELSE 'table' END AS kind) f
            WHERE r.bucket_id = ANY(%s)
            """,
            [PER_STEP, f"step-{STEPS - 1}", f"step-{STEPS - 1}", ids],
        )
        print(f"  artifacts {time.monotonic() - started:.0f} s")
        cursor.execute(
            """
            INSERT INTO runs_rendition (artifact_id, etag, position, viewer, title, status, payload,
                                        preview_key, error, attempts, created_at, updated_at)
            SELECT a.id, a.etag, 0, 'metrics', 'Metrics', 'ready',
                   jsonb_build_object('metrics',
                     jsonb_build_array(
                       jsonb_build_object('name', 'accuracy', 'value', v.acc,
                                          'display', to_char(v.acc, 'FM0.0000')),
                       jsonb_build_object('name', 'loss', 'value', v.loss,
                                          'display', to_char(v.loss, 'FM0.0000')))
                     || CASE WHEN r.id %% 2 = 0 THEN jsonb_build_array(
                       jsonb_build_object('name', 'f1', 'value', v.acc * 0.9,
                                          'display', to_char(v.acc * 0.9, 'FM0.0000')))
                        ELSE '[]'::jsonb END),
                   '', '', 1, now(), now()
            FROM runs_artifact a JOIN runs_run r ON r.id = a.run_id,
                 LATERAL (SELECT (((r.id * 7919) %% 10000) / 10000.0)::float8 AS acc,
                                 (((r.id * 104729) %% 10000) / 5000.0)::float8 AS loss) v
            WHERE a.bucket_id = ANY(%s) AND a.name = 'mlpipeline-metrics.json' AND r.id %% 10 <> 7
            """,
            [ids],
        )
        cursor.execute(
            """
            INSERT INTO runs_rendition (artifact_id, etag, position, viewer, title, status, payload,
                                        preview_key, error, attempts, created_at, updated_at)
            SELECT a.id, a.etag, 0, 'progress', 'Progress', 'ready',
                   jsonb_build_object('percent', (r.id %% 100), 'message', 'epoch ' || (r.id %% 100)),
                   '', '', 1, now(), now()
            FROM runs_artifact a JOIN runs_run r ON r.id = a.run_id
            WHERE a.bucket_id = ANY(%s) AND a.name = 'file-1.csv' AND a.key LIKE '%%/step-0/%%'
              AND r.id %% 10 = 3
            """,
            [ids],
        )
        print(f"  renditions {time.monotonic() - started:.0f} s")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE runs_run; ANALYZE runs_step; ANALYZE runs_artifact; ANALYZE runs_rendition")
    took = time.monotonic() - started
    print(f"seeded in {took:.0f} s")
    return took


if __name__ == "__main__":
    import os
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from _common import setup_django

    setup_django(os.environ.get("BENCH_DB", "bench_runs_list"))
    seed(int(os.environ.get("BENCH_RUNS", "200000")))
