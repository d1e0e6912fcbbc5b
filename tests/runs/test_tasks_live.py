"""Render tasks under failure, with a real worker process and the real broker.

- the worker process running a task is killed: the message goes back to the
  queue (acks_late + reject_on_worker_lost) and the rendition ends ready;
- the whole worker is killed: a new worker restores the unacknowledged
  message after the broker's visibility timeout;
- object storage is unreachable: the task retries with back-off, and fails
  with a reason when the retries run out.
"""

import os
import signal

from runs.models import Artifact, Rendition
from tests.conftest import WorkerProcess
from tests.helpers import put, wait_for
from tests.tcp_proxy import TCPProxy

# A dead worker's message is looked for every second (kombu's default period is
# 100 s, longer than these tests wait).
FAST_RESTORE = {"CELERY_UNACKED_RESTORE_INTERVAL_S": "1", "CELERY_UNACKED_RESTORE_THROTTLE": "1"}

# The proxy's ``delay`` slows every read from MinIO down, to catch a task mid-way.
SlowProxy = TCPProxy


def big_csv(mb: int) -> bytes:
    row = b"%08d,some words here,3.14159,true\n"
    n = mb * 1024 * 1024 // len(row % 0)
    return b"id,text,value,flag\n" + b"".join(row % i for i in range(n))


def renditions(bucket, key):
    artifact = Artifact.objects.filter(bucket=bucket, key=key).first()
    return list(Rendition.objects.filter(artifact=artifact, etag=artifact.etag)) if artifact else []


def state(bucket, key):
    rows = renditions(bucket, key)
    return (rows[0].status, rows[0].attempts, bool(rows[0].payload.get("rows"))) if rows else None


def worker_through(proxy, base: WorkerProcess, tmp_path, **env) -> WorkerProcess:
    env = {**base.env, "MINIO_ENDPOINT": f"127.0.0.1:{proxy.port}", **env}
    return WorkerProcess(base.queue, tmp_path / "worker2.log", env).start()


def test_killed_task_process_runs_again_and_ends_ready(
    minio, live_bucket, running_consumer, celery_worker_process, settings, tmp_path
):
    host, port = settings.MINIO_ENDPOINT.split(":")
    proxy = SlowProxy(host, int(port)).start()
    celery_worker_process.stop()
    worker = worker_through(proxy, celery_worker_process, tmp_path)
    try:
        proxy.delay = 0.02  # ~0.8 MB/s: indexing 8 MB takes ~10 s
        key = "kill/run/step/big.csv"
        put(minio, live_bucket.name, key, big_csv(8))
        # Mid-task: the first page is published, the row index is being built.
        wait_for(
            lambda: state(live_bucket, key) == ("rendering", 1, True),
            timeout=60,
            what="the first page, while the index is still being built",
        )
        (victim,) = worker.task_pids()
        os.kill(victim, signal.SIGKILL)
        proxy.delay = 0.0
        wait_for(
            lambda: (s := state(live_bucket, key)) and s[0] == "ready",
            timeout=60,
            what="the rendition to end ready after the kill",
        )
        (row,) = renditions(live_bucket, key)
        assert row.attempts == 2
        assert row.payload["row_count"] == len(big_csv(8).splitlines()) - 1
        # The pool saw this very process die of the kill (billiard's supervisor logs it).
        assert f"pid:{victim} exited with 'signal 9 (SIGKILL)'".encode() in worker.log()
    finally:
        worker.stop()
        proxy.cut()


def test_killed_worker_message_is_restored_for_the_next_worker(
    minio, live_bucket, running_consumer, celery_worker_process, settings, tmp_path
):
    host, port = settings.MINIO_ENDPOINT.split(":")
    proxy = SlowProxy(host, int(port)).start()
    celery_worker_process.stop()
    worker = worker_through(
        proxy, celery_worker_process, tmp_path, CELERY_VISIBILITY_TIMEOUT_S="3", **FAST_RESTORE
    )
    try:
        proxy.delay = 0.02
        key = "killall/run/step/big.csv"
        put(minio, live_bucket.name, key, big_csv(8))
        wait_for(lambda: state(live_bucket, key) == ("rendering", 1, True), timeout=60, what="mid-task")
        os.killpg(worker.proc.pid, signal.SIGKILL)  # worker and its pool: nobody says goodbye
        worker.proc.wait(10)
        proxy.delay = 0.0
        worker = worker_through(
            proxy, celery_worker_process, tmp_path, CELERY_VISIBILITY_TIMEOUT_S="3", **FAST_RESTORE
        )
        wait_for(
            lambda: (s := state(live_bucket, key)) and s[0] == "ready",
            timeout=90,
            what="the restored message to be rendered",
        )
        # At least the killed attempt and the one that finished. With a 3 s
        # visibility timeout a slow (loaded) second worker may be handed the
        # same message again: delivery is at-least-once, the task idempotent.
        assert renditions(live_bucket, key)[0].attempts >= 2
    finally:
        worker.stop()
        proxy.cut()


def test_storage_outage_is_retried_then_renders(
    minio, live_bucket, running_consumer, celery_worker_process, settings, tmp_path
):
    host, port = settings.MINIO_ENDPOINT.split(":")
    proxy = SlowProxy(host, int(port)).start()
    celery_worker_process.stop()
    worker = worker_through(proxy, celery_worker_process, tmp_path, RENDER_MAX_RETRIES="6")
    try:
        proxy.cut()
        key = "outage/run/step/t.csv"
        put(minio, live_bucket.name, key, b"a,b\n1,2\n")
        wait_for(lambda: b"Retry in" in worker.log(), timeout=60, what="a retry")
        assert state(live_bucket, key)[0] == "pending"  # back in the queue, not failed
        proxy.restore()
        wait_for(lambda: (s := state(live_bucket, key)) and s[0] == "ready", timeout=60, what="ready")
    finally:
        worker.stop()
        proxy.cut()


def test_storage_outage_past_the_retries_fails_with_a_reason(
    minio, live_bucket, running_consumer, celery_worker_process, settings, tmp_path
):
    host, port = settings.MINIO_ENDPOINT.split(":")
    proxy = SlowProxy(host, int(port)).start()
    celery_worker_process.stop()
    worker = worker_through(proxy, celery_worker_process, tmp_path, RENDER_MAX_RETRIES="1")
    try:
        proxy.cut()
        key = "outage2/run/step/t.csv"
        put(minio, live_bucket.name, key, b"a,b\n1,2\n")
        wait_for(lambda: (s := state(live_bucket, key)) and s[0] == "failed", timeout=90, what="failed")
        assert "Object storage kept failing after 2 tries" in renditions(live_bucket, key)[0].error
    finally:
        worker.stop()
