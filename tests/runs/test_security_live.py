"""Hostile files against the real render worker (issue 8; docs/security.md).

MinIO upload → Kafka → consumer → Celery worker (its own process, real
broker) → Rendition. Each test shows the hostile file ends as a failed
rendition with a reason, and the same worker process then serves the next
task. Peak resident memory of the worker's pool processes is read from
/proc (VmHWM) and printed.
"""

import struct
import threading
import zlib

from django.db import connection

from runs.models import Artifact, Rendition
from tests.conftest import WorkerProcess
from tests.helpers import put, wait_for
from tests.runs.rendering import files, fuzz

MiB = 1024 * 1024


def final(bucket, key, *, count=None):
    artifact = Artifact.objects.filter(bucket=bucket, key=key).first()
    rows = (
        list(Rendition.objects.filter(artifact=artifact, etag=artifact.etag).order_by("position"))
        if artifact
        else []
    )
    if not rows or any(r.status in ("pending", "rendering") for r in rows):
        return None
    return rows if count is None or len(rows) == count else None


def rendered(bucket, key, *, timeout=60, count=None):
    return wait_for(lambda: final(bucket, key, count=count), timeout=timeout, what=f"renditions of {key}")


def vm_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class PeakRSS:
    """The highest resident memory (VmHWM) any pool process of ``worker`` reached, sampled
    every 20 ms (a pool process that is replaced keeps its last sample)."""

    def __init__(self, worker: WorkerProcess):
        self.worker = worker
        self.peak_kib = 0
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                pids = self.worker.task_pids()
            except Exception:  # noqa: BLE001 - the worker is stopping
                pids = []
            self.pids.update(pids)
            for pid in pids:
                self.peak_kib = max(self.peak_kib, vm_hwm_kib(pid))
            self._stop.wait(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    @property
    def peak_mib(self) -> float:
        return self.peak_kib / 1024


def report(capsys, line: str) -> None:
    with capsys.disabled():
        print(f"\n[measured] {line}")


def still_serving(minio, bucket, key="after/run/step/after.md"):
    put(minio, bucket.name, key, b"# still here")
    (after,) = rendered(bucket, key)
    assert after.status == "ready", after.error


# --- 1. archive bombs ---------------------------------------------------------------------


def test_archive_bombs_fail_with_reasons_and_the_worker_stays_small_and_serves_the_next_task(
    minio, live_bucket, running_consumer, celery_worker_process, capsys
):
    b = live_bucket.name
    bombs = {
        # 696 bytes of bzip2 that unpack to an 800 MiB GNU long name.
        "bomb/run/step/mlpipeline-ui-metadata.tgz": (files.BZ2_LONGNAME_BOMB, "Only gzip-compressed"),
        # ~260 KB of gzip: a 256 MiB long name, then a pax header of 256 MiB.
        "bomb/run/step/longname.tgz": (files.tar_extended_bomb(256 * MiB), "long-name header"),
        "bomb/run/step/pax.tgz": (files.tar_extended_bomb(256 * MiB, kind=b"x"), "pax header"),
    }
    put(minio, b, "bomb/run/step/before.md", b"# before")
    rendered(live_bucket, "bomb/run/step/before.md")
    pool_before = set(celery_worker_process.task_pids())
    with PeakRSS(celery_worker_process) as peak:
        for key, (data, _) in bombs.items():
            put(minio, b, key, data)
        for key, (_, reason) in bombs.items():
            (out,) = rendered(live_bucket, key)
            assert out.status == "failed" and reason in out.error, (key, out.error)
        still_serving(minio, live_bucket)
    report(capsys, f"archive bombs: peak RSS of the render pool process {peak.peak_mib:.0f} MiB")
    assert peak.peak_mib < 300, f"the worker reached {peak.peak_mib:.0f} MiB"
    assert celery_worker_process.proc.poll() is None
    assert set(celery_worker_process.task_pids()) == pool_before  # no pool process died or was replaced


def rgba_png_header_only(width: int, height: int) -> bytes:
    """A PNG declaring width×height RGBA pixels with (almost) no data: decoding allocates
    the whole image (4 bytes a pixel) before it finds the data missing."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
        + chunk(b"IEND", b"")
    )


def test_a_render_over_the_memory_limit_fails_with_a_reason_and_the_worker_carries_on(
    minio, live_bucket, running_consumer, celery_worker_process, tmp_path, capsys
):
    # A pool process has ~230 MiB of address space after its imports; 400 MiB leaves
    # less than the 238 MiB this (allowed: 62 of 64 megapixels) image decodes to.
    celery_worker_process.stop()
    worker = WorkerProcess(
        celery_worker_process.queue,
        tmp_path / "worker-limited.log",
        {**celery_worker_process.env, "RENDER_WORKER_MAX_MEMORY_MB": "400"},
    ).start()
    try:
        b = live_bucket.name
        put(minio, b, "mem/run/step/small.md", b"# small")
        assert rendered(live_bucket, "mem/run/step/small.md")[0].status == "ready"
        with PeakRSS(worker) as peak:
            put(minio, b, "mem/run/step/huge.png", rgba_png_header_only(7900, 7900))
            (out,) = rendered(live_bucket, "mem/run/step/huge.png")
            assert out.status == "failed" and "memory" in out.error and "400 MiB" in out.error, out.error
            still_serving(minio, live_bucket)
        report(capsys, f"memory limit 400 MiB: peak RSS of the render pool process {peak.peak_mib:.0f} MiB")
        assert worker.proc.poll() is None
        assert b"RLIMIT_AS" in worker.log()  # the pool process logged the limit it runs under
    finally:
        worker.stop()


# --- 3. poison values ---------------------------------------------------------------------

REFUSE_TRIGGER = """
CREATE OR REPLACE FUNCTION pipelens_test_refuse() RETURNS trigger AS $$
BEGIN RAISE EXCEPTION 'refused by a test trigger'; END $$ LANGUAGE plpgsql;
CREATE TRIGGER pipelens_test_refuse BEFORE INSERT ON runs_rendition FOR EACH ROW
WHEN (NEW.status = 'ready' AND NEW.title LIKE '%%refuse-me%%') EXECUTE FUNCTION pipelens_test_refuse();
"""


def test_poison_values_and_unstorable_outputs_end_failed_with_a_reason(
    minio, live_bucket, running_consumer, celery_worker_process
):
    b = live_bucket.name
    poison = {
        "poison/run/eval/roc.csv": (
            b"fpr,tpr,thresholds\n0,0,inf\nnan,0.5,0.5\n1,1,0\n",
            "not a finite number",
        ),
        "poison/run/train/progress.json": (b'{"current": NaN, "total": 10}', "not a finite number"),
        "poison/run/eval/cm.csv": (b"target,predicted,count\na,a,inf\na,b,1\n", "not a finite number"),
        "poison/run/eval/mlpipeline-ui-metadata.json": (
            (
                b'{"version": 1, "outputs": [{"type": "roc", "storage": "inline", "format": "csv",'
                b' "source": "0,0,1\\n0.5,Infinity,0.5\\n1,1,0\\n"}]}'
            ),
            "not a finite number",
        ),
    }
    with connection.cursor() as cursor:
        cursor.execute(REFUSE_TRIGGER)
    try:
        for key, (data, _) in poison.items():
            put(minio, b, key, data)
        # The database refuses this one's ready rows (as it refused NaN in JSON).
        put(minio, b, "poison/run/report/refuse-me.md", b"# fine, but the database says no")
        # PostgreSQL's jsonb cannot hold U+0000: replaced, not a stuck rendition.
        put(
            minio,
            b,
            "poison/run/train/mlpipeline-metrics.json",
            b'{"metrics": [{"name": "acc\\u0000uracy", "numberValue": 0.9}]}',
        )
        for key, (_, reason) in poison.items():
            out = rendered(live_bucket, key)[0]
            assert out.status == "failed" and reason in out.error, (key, out.error)
        (refused,) = rendered(live_bucket, "poison/run/report/refuse-me.md")
        assert refused.status == "failed" and "could not be stored" in refused.error, refused.error
        (metric,) = rendered(live_bucket, "poison/run/train/mlpipeline-metrics.json")
        assert metric.status == "ready" and metric.payload["metrics"][0]["name"] == "acc\ufffduracy"
        still_serving(minio, live_bucket)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS pipelens_test_refuse ON runs_rendition;"
                "DROP FUNCTION IF EXISTS pipelens_test_refuse();"
            )


# --- 5. fuzzing through the real worker -----------------------------------------------------

FUZZ_SEED = 8
FUZZ_CASES = 120


def test_fuzzed_inputs_through_the_real_worker_end_ready_or_failed(
    minio, live_bucket, running_consumer, celery_worker_process, capsys
):
    """The seeded inputs of tests/runs/rendering/fuzz.py, uploaded to MinIO: each ends ready or
    failed with a reason, the pool process never dies, and its peak RSS is reported."""
    import time

    b = live_bucket.name
    keys = []
    put(minio, b, "fuzz/warm/up.md", b"# warm up")
    rendered(live_bucket, "fuzz/warm/up.md")
    pool_before = set(celery_worker_process.task_pids())
    started = time.monotonic()
    with PeakRSS(celery_worker_process) as peak:
        for i, (_kind, name, data) in enumerate(fuzz.cases(FUZZ_SEED, FUZZ_CASES)):
            keys.append(f"fuzz/case{i:03d}/{name}")
            put(minio, b, keys[-1], data)
        results = {key: rendered(live_bucket, key, timeout=120) for key in keys}
        elapsed = time.monotonic() - started
    counts = {"ready": 0, "failed": 0}
    for key, rows in results.items():
        for row in rows:
            counts[row.status] += 1
            assert row.status == "ready" or row.error.strip(), (key, row.pk)
            assert "Internal error" not in row.error, (key, row.error)
    report(
        capsys,
        f"fuzz through the worker: {FUZZ_CASES} inputs (seed {FUZZ_SEED}) in {elapsed:.0f} s, "
        f"{counts['ready']} ready / {counts['failed']} failed renditions, "
        f"peak RSS of the render pool process {peak.peak_mib:.0f} MiB",
    )
    assert peak.peak_mib < 400
    assert celery_worker_process.proc.poll() is None
    assert set(celery_worker_process.task_pids()) == pool_before  # no pool process died
    still_serving(minio, live_bucket)
