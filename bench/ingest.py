"""Ingest throughput: realistic MinIO messages straight into Kafka, timed until stored.

Produces N MinIO-shaped messages (KFP v1 dated, KFP v2 with uuid, a few
overwrites and deletes) across many runs and steps into a fresh topic, then
starts ``manage.py consume_events`` and times it until every key is stored.
Three rounds; reports the median events/s, p99 batch duration from the
consumer's log, and the consumer's peak RSS. Target (issue 2): >= 5,000
events/s, RSS <= 250 MB on 2 cores. Run with ``make bench B=ingest``.
"""

import base64
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

from _common import (
    ROOT,
    cpu_seconds,
    median,
    peak_rss_mb,
    percentile,
    report,
    setup_django,
    thread_cpu_seconds,
)

EVENTS = int(os.environ.get("BENCH_EVENTS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONSUMERS = int(os.environ.get("BENCH_CONSUMERS", "1"))
# "minio": MinIO's S3 event JSON; "seaweedfs": the SeaweedFS filer's protobuf notifications.
STORE = os.environ.get("BENCH_STORE", "minio")
BUCKET = "mlpipeline"


def record(bucket: str, key: str, name: str, at: datetime, seq: int) -> bytes:
    created = name.startswith("s3:ObjectCreated")
    obj = {
        "key": quote_plus(key, safe=""),
        "sequencer": f"{seq:X}",
        "userMetadata": {"content-type": "application/gzip"},
    }
    if created:
        obj.update(
            {
                "size": random.randint(100, 10_000_000),
                "eTag": uuid.uuid4().hex,
                "contentType": "application/gzip",
            }
        )
    rec = {
        "eventVersion": "2.0",
        "eventSource": "minio:s3",
        "awsRegion": "",
        "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
        "eventName": name,
        "userIdentity": {"principalId": "minio"},
        "requestParameters": {"principalId": "minio", "region": "", "sourceIPAddress": "10.244.0.17"},
        "responseElements": {
            "x-amz-id-2": uuid.uuid4().hex * 2,
            "x-amz-request-id": f"{seq:X}",
            "x-minio-deployment-id": "5b0c8a55-6d1f-4c5e-9a5c-0f7d3e2b1a90",
            "x-minio-origin-endpoint": "http://10.244.0.9:9000",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "Config",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "minio"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
        "source": {"host": "10.244.0.17", "port": "", "userAgent": "MinIO (linux; amd64) minio-go/v7.0.70"},
    }
    return json.dumps({"EventName": name, "Key": f"{bucket}/{key}", "Records": [rec]}).encode()


def plan(n: int) -> tuple[list[tuple[str, str, datetime, int]], set[str]]:
    """n object changes over ~n/40 runs: (event name, key, time, sequencer) and the live keys
    at the end."""
    rng = random.Random(42)
    start = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    changes, keys, live = [], [], set()
    outputs = ["mlpipeline-ui-metadata.tgz", "mlpipeline-metrics.tgz", "data.tgz", "model.tgz", "main.log"]
    run = 0
    while len(keys) < n:
        run += 1
        if run % 2:
            wf = f"train-pipeline-{uuid.UUID(int=rng.getrandbits(128)).hex[:5]}"
            for pod in range(8):
                for out in outputs:
                    keys.append(f"artifacts/{wf}/2026/11/29/{wf}-{1000000 + pod}/{out}")
        else:
            run_id = uuid.UUID(int=rng.getrandbits(128))
            for task in ("load-data", "preprocess", "train-model", "evaluate"):
                for i in range(10):
                    keys.append(
                        f"v2/artifacts/train/{run_id}/{task}/{uuid.UUID(int=rng.getrandbits(128))}"
                        f"/output {i}/part+{i}.csv"
                    )
    keys = keys[:n]
    seq = int(start.timestamp() * 1e9)
    for i, key in enumerate(keys):
        seq += 1_000_000
        at = start + timedelta(milliseconds=i)
        # ~2% of events are deletes of an earlier key, ~3% overwrite one.
        roll = rng.random()
        if roll < 0.02 and i > 10:
            target = keys[rng.randrange(i)]
            changes.append(("s3:ObjectRemoved:Delete", target, at, seq))
            live.discard(target)
            continue
        if roll < 0.05 and i > 10:
            key = keys[rng.randrange(i)]
        changes.append(("s3:ObjectCreated:Put", key, at, seq))
        live.add(key)
    return changes, live


def workload(n: int, *, bucket: str = BUCKET) -> tuple[list[tuple[bytes, bytes]], set[str]]:
    """n object changes as Kafka (key, value) pairs in the store's format, and the live keys.
    (SeaweedFS: more messages than changes, see ``filer_messages``.)"""
    changes, live = plan(n)
    if STORE == "seaweedfs":
        return filer_messages(changes), live
    return [
        (f"{bucket}/{key}".encode(), record(bucket, key, name, at, seq)) for name, key, at, seq in changes
    ], live


def filer_messages(changes) -> list[tuple[bytes, bytes, int]]:
    """The notifications SeaweedFS's filer publishes for these changes (docs/stores.md).

    As the filer does: the key is the entry's full path, the value an
    ``EventNotification``; an overwrite carries the old entry too; a delete only
    the old entry; and every directory the S3 gateway creates on the way
    (``mkdir -p`` of the key's folders) has a notification of its own, which the
    consumer reads and skips. So there are more messages than object changes.
    """
    from streaming.ingest import filer_pb2

    rng = random.Random(7)
    entries: dict[str, filer_pb2.Entry] = {}
    made_dirs: set[str] = set()
    out = []
    # The filer's commit times end now, and each record is stamped with its change's
    # time (the third element, ms), as the filer's producer does: the parser
    # believes an entry's time only within SEQUENCER_MAX_SKEW_NS of the record's
    # timestamp, and orders a removal by that timestamp.
    shift = time.time_ns() - changes[-1][3]
    for name, key, at, seq in changes:
        seq += shift
        at += timedelta(microseconds=shift // 1000)
        path = f"/buckets/{BUCKET}/{key}"
        directory, _, base = path.rpartition("/")
        if name.startswith("s3:ObjectRemoved"):
            old = entries.pop(key, None)
            if old is None:
                continue  # already deleted: the filer has no entry, so no notification
            note = filer_pb2.EventNotification(delete_chunks=True, signatures=[906054812])
            note.old_entry.CopyFrom(old)
            out.append((path.encode(), note.SerializeToString(), seq // 10**6))
            continue
        # The folders, top down, the first time they appear.
        parts = directory.split("/")
        for depth in range(4, len(parts) + 1):  # below /buckets/<bucket>
            folder = "/".join(parts[:depth])
            if folder not in made_dirs:
                made_dirs.add(folder)
                parent, _, leaf = folder.rpartition("/")
                note = filer_pb2.EventNotification(new_parent_path=parent, signatures=[906054812])
                note.new_entry.name = leaf
                note.new_entry.is_directory = True
                note.new_entry.attributes.mtime = int(at.timestamp())
                note.new_entry.attributes.file_mode = 0o20000000755
                out.append((folder.encode(), note.SerializeToString(), seq // 10**6))
        size = rng.randint(100, 10_000_000)
        digest = uuid.UUID(int=rng.getrandbits(128)).bytes
        new = filer_pb2.Entry(name=base, commit_ts_ns=seq)
        attributes = new.attributes
        attributes.file_size = size
        attributes.mtime = seq // 10**9
        attributes.mtime_ns = seq % 10**9
        attributes.crtime = seq // 10**9
        attributes.file_mode = 0o660
        attributes.mime = "application/gzip"
        attributes.md5 = digest
        chunk = new.chunks.add(
            file_id=f"3,{seq & 0xFFFFFF:x}{rng.getrandbits(32):08x}",
            size=size,
            modified_ts_ns=seq,
            e_tag=base64.b64encode(digest).decode(),
        )
        chunk.fid.volume_id = 3
        chunk.fid.file_key = seq & 0xFFFFFF
        chunk.fid.cookie = rng.getrandbits(32)
        new.extended["Seaweed-X-Amz-ETag"] = digest.hex().encode()
        new.extended["X-Amz-Meta-Content-Type"] = b"application/gzip"
        note = filer_pb2.EventNotification(new_parent_path=directory, signatures=[906054812])
        old = entries.get(key)
        if old is not None:
            note.old_entry.CopyFrom(old)
            note.delete_chunks = True
        note.new_entry.CopyFrom(new)
        entries[key] = new
        out.append((path.encode(), note.SerializeToString(), seq // 10**6))
    return out


def produce(topic: str, messages, *, create: bool = True) -> None:
    """``messages`` onto ``topic`` (created first with 4 partitions unless ``create`` is false)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from django.conf import settings

    if create:
        admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
        admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(30)
    producer = Producer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 200000,
        }
    )
    for key, value, *stamp in messages:
        while True:
            try:
                # The filer's producer stamps each record when it sends it, just after
                # the change: the removals are ordered by it (filer_events.py).
                producer.produce(topic, value=value, key=key, timestamp=stamp[0] if stamp else 0)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0


def all_committed(topic: str, *, group: str) -> bool:
    from confluent_kafka import Consumer, TopicPartition
    from django.conf import settings

    probe = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(4)]
        ends = [probe.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
        done = probe.committed(parts, timeout=10)
        return all(tp.offset >= end for tp, end in zip(done, ends, strict=False))
    finally:
        probe.close()


def one_round(
    db_url: str, messages, expected: int, log_path: str
) -> tuple[float, float, list[float], float, dict, float]:
    from django.db import connection

    from runs.models import Artifact, Bucket, KafkaTopic

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE runs_artifact, runs_step, runs_run, runs_ingesterror, runs_bucket, "
            "runs_kafkatopic CASCADE"
        )
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    try:
        produce(topic, messages)
        message_format = (
            KafkaTopic.MessageFormat.SEAWEEDFS_FILER if STORE == "seaweedfs" else KafkaTopic.MessageFormat.S3
        )
        Bucket.objects.create(
            name=BUCKET,
            topic=KafkaTopic.objects.create(name=topic, partitions=4, message_format=message_format),
        )
        # Render batches go to a queue no `make run` worker reads (they expire unread).
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": "INFO",
            "RENDER_QUEUE": "bench-ingest-render",
        }
        with open(log_path, "w") as log:
            started, started_wall = time.monotonic(), time.time()
            prefix = os.environ.get("BENCH_CONSUMER_PREFIX", "").split()  # e.g. a profiler
            # CONSUMERS processes in one consumer group share the topic's 4
            # partitions: the way to use more than one core, as in production.
            procs = [
                subprocess.Popen(
                    [*prefix, sys.executable, "manage.py", "consume_events", "--group", topic],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                for _ in range(CONSUMERS)
            ]
            try:
                # The consumer commits offsets only after the batch's transaction
                # commits, so "all offsets committed" means "all stored"; asking
                # Kafka keeps the bench from loading PostgreSQL while it measures.
                deadline = started + 600
                while not all_committed(topic, group=topic):
                    if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                        raise SystemExit(f"consumer stopped or timed out; see {log_path}")
                    time.sleep(0.1)
                elapsed = time.monotonic() - started
                rss = max(peak_rss_mb(p.pid) for p in procs)
                cpu = sum(cpu_seconds(p.pid) for p in procs)
                threads = thread_cpu_seconds(procs[0].pid)
            finally:
                for p in procs:
                    p.terminate()
                for p in procs:
                    p.wait(60)
        live = Artifact.objects.filter(deleted=False).count()
        if live != expected:
            raise SystemExit(f"expected {expected} live artifacts, found {live}; see {log_path}")
        log_text = open(log_path).read()
        durations = [float(m) for m in re.findall(r"duration_ms=([0-9.]+)", log_text)]
        # Start-up (Python, Django, the first subscription), from the consumer's log:
        # the part of the elapsed time that does not grow with the number of events.
        subscribed = re.search(r"^(\S+ \S+) .*event=subscribed", log_text, re.MULTILINE)
        startup = (
            datetime.strptime(subscribed.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() - started_wall
            if subscribed
            else float("nan")
        )
    finally:
        # The round's topic goes, also when the round failed. Keep the client until the
        # result: dropped at once (as before), it never sent the request and the topic stayed.
        from confluent_kafka.admin import AdminClient
        from django.conf import settings

        from streaming.ingest.session_topics import topic_delete

        topic_delete(AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}), topic=topic)
    return elapsed, rss, durations, cpu, threads, startup


def main() -> None:
    # BENCH_DB: a database of its own, e.g. to measure two checkouts side by side.
    db_url = setup_django(os.environ.get("BENCH_DB", "bench_ingest"))
    messages, live = workload(EVENTS)
    rates, steady_rates, rss_values, durations, cpu_per_event = [], [], [], [], []
    for n in range(ROUNDS):
        log_path = os.path.join(tempfile.gettempdir(), f"bench-ingest-{os.getpid()}-{n}.log")
        elapsed, rss, batch_ms, cpu, threads, startup = one_round(db_url, messages, len(live), log_path)
        rates.append(len(messages) / elapsed)
        steady_rates.append(len(messages) / (elapsed - startup))
        cpu_per_event.append(cpu / len(messages) * 1e6)
        rss_values.append(rss)
        durations += batch_ms
        print(
            f"round {n + 1}: {len(messages)} events in {elapsed:.2f} s = {rates[-1]:.0f} events/s, "
            f"peak RSS {rss} MB, {len(batch_ms)} batches, consumer CPU {cpu:.1f} s; "
            f"start-up {startup:.2f} s, {steady_rates[-1]:.0f} events/s after it"
        )
        # Per thread: "python" = every Python thread (parse, store, announce, pushes);
        # rdk:* = librdkafka's own threads.
        by_thread = sorted(threads.items(), key=lambda kv: -kv[1])
        print(
            "  µs CPU per event by thread: "
            + ", ".join(f"{n} {s / len(messages) * 1e6:.1f}" for n, s in by_thread if s)
        )
    report(
        {
            "store": STORE,
            "events": len(messages),
            "object_changes": EVENTS,
            "rounds": ROUNDS,
            "events_per_s": round(median(rates)),
            "events_per_s_after_startup": round(median(steady_rates)),
            "batch_ms_p50": round(median(durations), 1),
            "batch_ms_p99": round(percentile(durations, 99), 1),
            "consumers": CONSUMERS,
            "consumer_rss_mb": max(rss_values),
            "consumer_cpu_us_per_event": round(median(cpu_per_event), 1),
        }
    )


if __name__ == "__main__":
    main()
