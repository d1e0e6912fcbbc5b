"""History backfill: import a bucket of 200,000 objects (KFP v1 and v2 layouts) with
``manage.py backfill``, then re-sweep it unchanged; meanwhile measure the live path.
Issue 10 targets: backfill >= 5,000 objects/s, re-sweep >= 10,000 objects/s,
RSS <= 250 MB, live p99 <= 500 ms. Run with ``make bench B=backfill``.

The bucket (``pipelens-bench-backfill``, no notification) is filled once and
reused while it holds exactly BENCH_OBJECTS objects. The backfill runs as its
own process (peak RSS from /proc); while it runs, a live bucket with daphne
and ``consume_events`` (the default configuration of ``make run``: reconciler
on, no MinIO queue dir) takes one upload every 100 ms, timed from
``put_object`` to the authenticated WebSocket client.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from _common import ROOT, median, peak_rss_mb, percentile, report, setup_django

OBJECTS = int(os.environ.get("BENCH_OBJECTS", "200000"))
BUCKET = os.environ.get("BENCH_BACKFILL_BUCKET", "pipelens-bench-backfill")
LIVE_SAMPLES = int(os.environ.get("BENCH_SAMPLES", "200"))


def keys(count: int):
    """Realistic KFP keys: half v1 (dated pod folders, .tgz outputs and logs), half v2."""
    for i in range(count):
        run, step = i // 500, (i // 50) % 10
        if i % 2:
            wf = f"train-pipeline-{run:05d}"
            yield f"artifacts/{wf}/2026/11/{1 + run % 28:02d}/{wf}-{step:010d}/out-{i}.tgz"
        else:
            yield (
                f"v2/artifacts/train/{run:08d}-0000-4000-8000-000000000000/task-{step}/"
                f"0a6b2c43-3b8e-4f5e-9d0c-{i:012d}/metrics-{i}.json"
            )


def fill(client) -> None:
    if not client.bucket_exists(BUCKET):
        client.make_bucket(BUCKET)
    have = sum(1 for _ in client.list_objects(BUCKET, recursive=True))
    if have == OBJECTS:
        print(f"reusing {BUCKET}: {have:,} objects")
        return
    print(f"filling {BUCKET} with {OBJECTS:,} objects (once; reused afterwards)")
    for obj in client.list_objects(BUCKET, recursive=True):
        client.remove_object(BUCKET, obj.object_name)
    started = time.monotonic()

    def put(key):
        client.put_object(BUCKET, key, io.BytesIO(b"x"), 1)

    with ThreadPoolExecutor(32) as pool:
        for done, _ in enumerate(pool.map(put, keys(OBJECTS)), 1):
            if done % 20000 == 0:
                print(f"  {done:,} uploaded ({done / (time.monotonic() - started):,.0f}/s)")


def backfill(db_url: str) -> tuple[float, float, str]:
    """Run ``manage.py backfill`` as its own process: (seconds, peak RSS MB, last line)."""
    env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_SETTINGS_MODULE": "vizsite.settings.bench"}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "backfill", BUCKET, "--no-count"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    rss = 0.0
    while proc.poll() is None:
        try:
            rss = max(rss, peak_rss_mb(proc.pid))
        except (FileNotFoundError, ProcessLookupError):
            pass
        time.sleep(0.2)
    out = proc.stdout.read().strip()
    if proc.returncode != 0:
        raise SystemExit(f"backfill failed ({proc.returncode}): {out}")
    return time.monotonic() - started, rss, out.splitlines()[-1] if out else ""


def last_sweep_rate() -> float:
    """Objects/s of the bucket's last finished sweep, from its own start and end (no process start-up)."""
    from runs.models import BucketSweep

    sweep = BucketSweep.objects.filter(bucket__name=BUCKET, status="done").order_by("-finished_at").first()
    return sweep.listed / max((sweep.finished_at - sweep.started_at).total_seconds(), 1e-6)


def main() -> None:
    db_url = setup_django("bench")
    import latency
    from _live import live_services, session_cookie
    from latency import measure

    from runs.models import Bucket
    from runs.services.buckets import bucket_register
    from runs.storage import minio_client

    client = minio_client()
    fill(client)
    Bucket.objects.filter(name=BUCKET).delete()  # start from an empty database for it
    bucket_register(name=BUCKET)
    client.delete_bucket_notification(BUCKET)
    # Not on a topic: the live consumer's own sweeps must not take part in the figures.
    Bucket.objects.filter(name=BUCKET).update(topic=None)

    latency.SAMPLES, latency.INTERVAL_S = LIVE_SAMPLES, 0.1
    with live_services(db_url) as services:
        services.put("watched/step/warm-up.txt")
        run = services.wait_run("watched")
        cookie = session_cookie()
        result: dict = {}
        worker = threading.Thread(
            target=lambda: result.update(zip(("s", "rss", "out"), backfill(db_url), strict=True))
        )
        worker.start()
        time.sleep(2.0)  # the backfill is under way
        put_at, got_at = asyncio.run(asyncio.wait_for(measure(services, run.pk, cookie), 300))
        live_during = worker.is_alive()
        worker.join()
        print(result["out"])
        backfill_rate = last_sweep_rate()
        resweep_s, resweep_rss, resweep_out = backfill(db_url)
        print(resweep_out)
        resweep_rate = last_sweep_rate()

    live = [(got_at[k] - put_at[k]) * 1000 for k in put_at if k in got_at]
    from runs.models import Artifact

    stored = Artifact.objects.filter(bucket__name=BUCKET).count()
    report(
        {
            "objects": OBJECTS,
            "stored": stored,
            "backfill_process_s": round(result["s"], 1),
            "backfill_objects_per_s": round(backfill_rate),
            "resweep_process_s": round(resweep_s, 1),
            "resweep_objects_per_s": round(resweep_rate),
            "rss_mb": max(result["rss"], resweep_rss),
            "live_samples": len(live),
            "live_lost": len(put_at) - len(live),
            "live_all_during_backfill": live_during,
            "live_p50_ms": round(median(live), 1) if live else None,
            "live_p99_ms": round(percentile(live, 99), 1) if live else None,
        }
    )


if __name__ == "__main__":
    main()
