"""Rendering benchmarks (issue 4): a 24-megapixel thumbnail, and a 1 GB CSV end to end.

1. Thumbnail: Pillow thumbnail of a generated 6000x4000 JPEG (draft mode,
   EXIF orientation), median of 20, in this process. Target <= 150 ms.
2. 1 GB CSV on the real path: the file is generated into a temp file,
   streamed into MinIO (multipart), MinIO publishes to Kafka, a
   ``consume_events`` subprocess stores it, a ``celery worker`` subprocess
   renders it. Reported: time from the event's arrival on the Kafka topic to
   the first page in the database (target <= 3 s); median time of a random
   page once the row index is built (target <= 300 ms); the worker pool
   process's peak RSS (target <= 300 MB). The object, the temp file and
   the bucket are deleted afterwards.

Run with ``make bench B=render``. BENCH_CSV_MB changes the CSV size.
"""

import io
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from _common import ROOT, claim_events_topic, peak_rss_mb, report, setup_django

CSV_MB = int(os.environ.get("BENCH_CSV_MB", "1024"))
THUMB_ROUNDS = 20
RANDOM_PAGES = 20


def jpeg_24mp(*, worst_case: bool = False) -> bytes:
    """A 6000x4000 JPEG (quality 90, EXIF orientation 6). Photo-like: gradients with
    sensor-like noise, ~7 MB, as a 24 MP camera writes. ``worst_case``: one channel
    pure noise, ~11 MB, which only costs more entropy decoding."""
    from PIL import Image

    noise = Image.effect_noise((6000, 4000), 40)
    gradient = Image.linear_gradient("L").resize((6000, 4000))
    red = noise if worst_case else Image.blend(noise, gradient, 0.5)
    im = Image.merge("RGB", (red, gradient, Image.eval(gradient, lambda v: 255 - v)))
    out = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    im.save(out, "JPEG", quality=90, exif=exif.tobytes())
    return out.getvalue()


def bench_thumbnail(*, worst_case: bool = False) -> float:
    from django.conf import settings

    from runs.rendering.image import thumbnail

    data = jpeg_24mp(worst_case=worst_case)
    print(f"24 MP JPEG{' (worst case: pure noise)' if worst_case else ''}: {len(data) / 1e6:.1f} MB")
    times = []
    for _ in range(THUMB_ROUNDS):
        t = time.perf_counter()
        thumbnail(data, size=settings.THUMBNAIL_SIZE, max_pixels=settings.MAX_IMAGE_PIXELS)
        times.append((time.perf_counter() - t) * 1000)
    return round(statistics.median(times), 1)


def write_csv(path: str, mb: int) -> int:
    """A CSV of ``mb`` MiB, written in 1 MiB-ish blocks (bounded memory); returns its data rows."""
    rows_per_block = 12_000
    block = b"".join(
        b"BLKNO%05d,sensor-%03d,%.4f,%d,%s\n"
        % (i, i % 311, (i * 7919 % 10007) / 10007, i * 31 % 1000, b"true" if i % 3 else b"false")
        for i in range(rows_per_block)
    )
    target = mb * 1024 * 1024
    written, rows, n = 0, 0, 0
    with open(path, "wb") as f:
        f.write(b"id,sensor,value,count,ok\n")
        while written < target:
            f.write(block.replace(b"BLKNO", b"%07d" % n))
            written += len(block) + 2 * rows_per_block
            rows += rows_per_block
            n += 1
    return rows


class Arrivals(threading.Thread):
    """Notes when the event about ``key`` reaches the benchmark's MinIO topic."""

    def __init__(self, bucket: str, key: str):
        super().__init__(daemon=True)
        self.wanted = f"{bucket}/{key}"
        self.at = None
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self):
        from confluent_kafka import Consumer, TopicPartition
        from django.conf import settings

        topic = settings.MINIO_KAFKA_TOPIC
        reader = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": "bench-render",
                "enable.auto.commit": False,
            }
        )
        try:
            parts = reader.list_topics(topic, timeout=10).topics[topic].partitions
            reader.assign(
                [
                    TopicPartition(
                        topic, p, reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    )
                    for p in parts
                ]
            )
            self.ready.set()
            while not self.stop.is_set() and self.at is None:
                msg = reader.poll(0.02)
                if msg is not None and not msg.error() and (msg.key() or b"").decode() == self.wanted:
                    self.at = time.monotonic()
        finally:
            self.ready.set()
            reader.close()


def skip_to_end(group: str) -> None:
    from confluent_kafka import Consumer, TopicPartition
    from django.conf import settings

    topic = settings.MINIO_KAFKA_TOPIC
    c = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        c.commit(
            offsets=[
                TopicPartition(topic, p, c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in parts
            ],
            asynchronous=False,
        )
    finally:
        c.close()


def bench_csv(db_url: str) -> dict:
    import psutil
    from django.conf import settings

    from runs.models import Artifact, Rendition
    from runs.rendering.readback import table_page
    from runs.services.buckets import bucket_register
    from runs.storage import minio_client

    tag = uuid.uuid4().hex[:8]
    claim_events_topic()
    bucket = bucket_register(name=f"bench-render-{tag}")
    queue, group = f"bench-render-{tag}", f"bench-render-{tag}"
    key = "bench-run/generate/big.csv"
    worker = consumer = path = None
    client = minio_client()
    try:
        skip_to_end(group)
        env = {**os.environ, "DATABASE_URL": db_url, "DJANGO_DEBUG": "false", "RENDER_QUEUE": queue}
        log_dir = tempfile.gettempdir()
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "vizsite",
                "worker",
                "-Q",
                queue,
                "-c",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-l",
                "INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=open(f"{log_dir}/bench-render-worker.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        consumer = subprocess.Popen(
            [sys.executable, "manage.py", "consume_events", "--group", group],
            cwd=ROOT,
            env=env,
            stdout=open(f"{log_dir}/bench-render-consumer.log", "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        fd, path = tempfile.mkstemp(suffix=".csv")
        os.close(fd)
        t = time.monotonic()
        rows = write_csv(path, CSV_MB)
        size = os.path.getsize(path)
        print(f"CSV: {size / 2**20:.0f} MiB, {rows:,} rows, generated in {time.monotonic() - t:.1f} s")
        time.sleep(3)  # let the consumer and worker finish starting
        arrivals = Arrivals(bucket.name, key)
        arrivals.start()
        arrivals.ready.wait(20)
        t = time.monotonic()
        client.fput_object(bucket.name, key, path, content_type="text/csv", part_size=64 * 1024 * 1024)
        put_done = time.monotonic()
        print(f"uploaded in {put_done - t:.1f} s")
        os.unlink(path)  # stream into MinIO, then the local copy goes

        first_page_at = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            r = Rendition.objects.filter(artifact__bucket=bucket, artifact__key=key).first()
            if r is not None and r.payload.get("rows") and first_page_at is None:
                first_page_at = time.monotonic()
            if r is not None and r.status in ("ready", "failed"):
                break
            time.sleep(0.02)
        else:
            raise SystemExit("the CSV was not rendered within 600 s")
        indexed_at = time.monotonic()
        arrivals.stop.set()
        if r.status != "ready":
            raise SystemExit(f"the CSV rendition failed: {r.error}")
        assert r.payload["row_count"] == rows, (r.payload["row_count"], rows)
        event_at = arrivals.at or put_done
        print(
            f"event on Kafka {event_at - put_done:+.2f} s after the upload; first page "
            f"{first_page_at - event_at:.2f} s after the event; fully indexed {indexed_at - event_at:.1f} s "
            f"after it ({size / 2**20 / max(0.001, indexed_at - first_page_at):.0f} MiB/s)"
        )
        children = psutil.Process(worker.pid).children()
        rss = max([peak_rss_mb(c.pid) for c in children] or [float("nan")])
        print(f"worker peak RSS: pool process {rss} MB, main process {peak_rss_mb(worker.pid)} MB")

        rng = random.Random(7)
        times = []
        r = Rendition.objects.get(pk=r.pk)
        r.artifact = Artifact.objects.get(pk=r.artifact_id)
        for i in range(RANDOM_PAGES + 1):
            start = rng.randrange(rows - 50)
            t = time.perf_counter()
            page = table_page(rendition=r, start=start, count=50)
            elapsed = (time.perf_counter() - t) * 1000
            assert page["rows"][0][0] == f"{start // 12000:07d}{start % 12000:05d}", (start, page["rows"][0])
            if i:  # the first call also loads the index (cached after)
                times.append(elapsed)
        return {
            "csv_mb": round(size / 2**20),
            "csv_rows": rows,
            "csv_first_page_s": round(first_page_at - event_at, 2),
            "csv_indexed_s": round(indexed_at - event_at, 1),
            "csv_random_page_ms": round(statistics.median(times), 1),
            "worker_rss_mb": rss,
        }
    finally:
        for proc in (consumer, worker):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, 15)
                proc.wait(60)
        if path and os.path.exists(path):
            os.unlink(path)
        # The bucket goes too (notification first, so its clean-up publishes nothing).
        client.delete_bucket_notification(bucket.name)
        for obj in client.list_objects(bucket.name, recursive=True):
            client.remove_object(bucket.name, obj.object_name)
        client.remove_bucket(bucket.name)
        prefix = f"{settings.PREVIEW_BUCKET}"
        from runs.storage import preview_prefix

        for obj in client.list_objects(prefix, prefix=preview_prefix() + "/", recursive=True):
            client.remove_object(prefix, obj.object_name)
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue, f"_kombu.binding.{queue}")


def main() -> None:
    db_url = setup_django("bench_render")
    figures = {
        "thumbnail_24mp_ms": bench_thumbnail(),
        "thumbnail_24mp_noise_ms": bench_thumbnail(worst_case=True),
    }
    print(
        f"thumbnail: {figures['thumbnail_24mp_ms']} ms, worst case {figures['thumbnail_24mp_noise_ms']} ms "
        f"(medians of {THUMB_ROUNDS})"
    )
    figures.update(bench_csv(db_url))
    report(figures)


if __name__ == "__main__":
    main()
