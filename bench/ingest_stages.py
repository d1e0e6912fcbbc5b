"""Where the consumer's CPU goes, per stage and per event (docs/performance.md#ingest).

Runs the consumer's stages one after the other in this process, on the same
workload as ``bench/ingest.py`` (MinIO JSON, or SeaweedFS filer protobuf with
``BENCH_STORE=seaweedfs``), so that each stage's CPU can be read on its own:

- ``fetch``: ``Consumer.consume`` from a real topic (librdkafka and the
  message objects);
- ``parse``: ``kafka_loop.parse_batch``;
- ``store_python``: ``ingest_events`` in Python (dedupe, layouts, rows), its
  after-commit hooks excluded;
- ``postgresql``: CPU of the PostgreSQL backend serving the connection
  (read from ``/proc/<backend pid>/stat``; PostgreSQL runs on this machine);
- ``hooks``: the after-commit listeners (render enqueue, run summaries and
  pushes, recipes).

CPU is ``time.process_time`` (all of this process's threads; the stages run
one after the other), so other processes' load does not count; the pushes'
sender thread is included in ``hooks`` by waiting for its sends. Median of
``BENCH_ROUNDS`` passes over the whole workload; the last line is the JSON
object. ``make bench B=ingest_stages``.
"""

import asyncio
import os
import sys
import time
import uuid

from _common import cpu_seconds, median, report, setup_django
from ingest import BUCKET, EVENTS, STORE, produce, workload

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
STAGES = ("fetch", "parse", "store_python", "postgresql", "hooks")


def backend_cpu_s() -> float:
    from django.db import connection

    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return cpu_seconds(pid)


def fetch_all(topic: str, expected: int, batch_size: int) -> list[list]:
    from confluent_kafka import Consumer
    from django.conf import settings

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"stages-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    batches, got = [], 0
    try:
        deadline = time.monotonic() + 120
        while got < expected and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=batch_size, timeout=1.0)
            messages = [m for m in messages if m.error() is None]
            if messages:
                batches.append(messages)
                got += len(messages)
    finally:
        consumer.close()
    if got != expected:
        raise SystemExit(f"fetched {got} of {expected} messages")
    return batches


def one_pass(topic: str, messages, formats: dict[str, str]) -> dict[str, float]:
    from django.conf import settings
    from django.db import connection

    from runs.models import Bucket, KafkaTopic
    from runs.services import changes
    from runs.services.ingest import ingest_events
    from streaming.ingest.kafka_loop import parse_batch

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE runs_artifact, runs_step, runs_run, runs_ingesterror, runs_bucket, "
            "runs_kafkatopic CASCADE"
        )
    Bucket.objects.create(name=BUCKET, topic=KafkaTopic.objects.create(name=topic, partitions=4))

    spent = dict.fromkeys(STAGES, 0.0)
    notify = changes._notify

    def timed_notify(listeners, change):
        started = time.process_time()
        notify(listeners, change)
        # The pushes leave through the broadcast thread: wait for them so that
        # their CPU is counted here, not in the next stage.
        from streaming.live.broadcast import _send_loop

        _send_loop().submit(_drain()).result(30)
        spent["hooks"] += time.process_time() - started

    changes._notify = timed_notify
    try:
        t0 = time.process_time()
        batches = fetch_all(topic, len(messages), settings.KAFKA_BATCH_SIZE)
        spent["fetch"] = time.process_time() - t0
        for batch in batches:
            t0 = time.process_time()
            parsed = parse_batch(batch, formats)
            spent["parse"] += time.process_time() - t0
            pg0 = backend_cpu_s()
            t0 = time.process_time()
            hooks0 = spent["hooks"]
            ingest_events(events=parsed.events, rejected=parsed.rejected, raw_messages=parsed.raw)
            spent["store_python"] += time.process_time() - t0 - (spent["hooks"] - hooks0)
            spent["postgresql"] += backend_cpu_s() - pg0
    finally:
        changes._notify = notify
    return {stage: seconds / len(messages) * 1e6 for stage, seconds in spent.items()}


async def _drain():
    """Wait for every other task on the broadcast loop: the sends of this batch's pushes
    (a coroutine queued behind them would run as soon as they first yield)."""
    me = asyncio.current_task()
    others = [task for task in asyncio.all_tasks() if task is not me]
    if others:
        await asyncio.gather(*others, return_exceptions=True)


def main() -> None:
    setup_django(os.environ.get("BENCH_DB", "bench_ingest_stages"))
    from confluent_kafka.admin import AdminClient
    from django.conf import settings

    from streaming.ingest.session_topics import topic_delete

    messages, _ = workload(EVENTS)
    topic = f"bench-stages-{uuid.uuid4().hex[:8]}"
    formats = {topic: "seaweedfs_filer" if STORE == "seaweedfs" else "s3"}
    produce(topic, messages)
    passes = []
    try:
        for n in range(ROUNDS):
            per_event = one_pass(topic, messages, formats)
            passes.append(per_event)
            shown = ", ".join(f"{k} {v:.1f}" for k, v in per_event.items())
            print(f"pass {n + 1}: µs CPU per event: {shown}; total {sum(per_event.values()):.1f}", flush=True)
    finally:
        topic_delete(AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}), topic=topic)
    figures = {stage + "_us": round(median([p[stage] for p in passes]), 1) for stage in STAGES}
    consumer_us = sum(v for k, v in figures.items() if k != "postgresql_us")
    report(
        {
            "store": STORE,
            "events": len(messages),
            "rounds": ROUNDS,
            **figures,
            "consumer_us": round(consumer_us, 1),
            "total_us": round(consumer_us + figures["postgresql_us"], 1),
        }
    )


if __name__ == "__main__":
    sys.exit(main())
