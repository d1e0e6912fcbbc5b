"""Helpers for the live-path benchmarks: a real daphne and a real consumer as subprocesses,
a MinIO bucket that publishes to Kafka, and an authenticated session for WebSocket clients."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from _common import ROOT, claim_events_topic

LOG_DIR = Path(tempfile.gettempdir())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_to_end(group: str, topic: str) -> None:
    """Commit the topic's end offsets for ``group``: its consumer reads only new events."""
    from confluent_kafka import Consumer, TopicPartition
    from django.conf import settings

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": group,
            "enable.auto.commit": False,
        }
    )
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        ends = [
            TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in parts
        ]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


def session_cookie(username: str = "bench") -> str:
    """A logged-in session for a superuser, as the login form would leave it."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    user, _ = get_user_model().objects.get_or_create(username=username)
    user.is_superuser = user.is_staff = True
    user.set_unusable_password()
    user.save()
    store = SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.create()
    return f"sessionid={store.session_key}"


class Services:
    """daphne + consume_events on the bench database, and a fresh bucket publishing to Kafka."""

    def __init__(self, db_url: str, *, layer: str = "pubsub"):
        self.db_url = db_url
        self.layer = layer
        # BENCH_STORE=seaweedfs: the bucket lives on SeaweedFS and its events come
        # from the filer's topic (protobuf), as on Kubeflow >= 2.15 (docs/stores.md).
        self.store = os.environ.get("BENCH_STORE", "default")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.bucket = None

    def env(self) -> dict:
        return {
            **os.environ,
            "DATABASE_URL": self.db_url,
            "DJANGO_DEBUG": "false",
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "CHANNEL_LAYER": self.layer,
            "CHANNEL_LAYER_PREFIX": f"pipelens-bench-{self.port}",
            "DJANGO_SETTINGS_MODULE": "vizsite.settings.bench",
        }

    def start(self) -> Services:
        from runs.services.buckets import bucket_register

        topic = claim_events_topic()
        self.bucket = bucket_register(name=f"bench-{uuid.uuid4().hex[:10]}", store=self.store)
        group = f"bench-live-{uuid.uuid4().hex[:8]}"
        skip_to_end(group, topic)
        if self.bucket.topic.name != topic:  # SeaweedFS: the filer's topic, which claim_events_topic disabled
            from runs.models import KafkaTopic

            KafkaTopic.objects.filter(pk=self.bucket.topic_id).update(enabled=True)
            skip_to_end(group, self.bucket.topic.name)
        bindir = Path(sys.executable).parent
        web_log = open(LOG_DIR / f"bench-daphne-{self.port}.log", "w")
        ingest_log = open(LOG_DIR / f"bench-consumer-{self.port}.log", "w")
        prefix = os.environ.get("BENCH_DAPHNE_PREFIX", "").split()  # e.g. a profiler
        self.procs.append(
            subprocess.Popen(
                [
                    *prefix,
                    str(bindir / "daphne"),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(self.port),
                    "vizsite.asgi:application",
                ],
                cwd=ROOT,
                env=self.env(),
                stdout=web_log,
                stderr=subprocess.STDOUT,
            )
        )
        self.procs.append(
            subprocess.Popen(
                [sys.executable, "manage.py", "consume_events", "--group", group],
                cwd=ROOT,
                env=self.env(),
                stdout=ingest_log,
                stderr=subprocess.STDOUT,
            )
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.procs):
                    raise SystemExit(f"daphne did not start; see {web_log.name}") from None
                time.sleep(0.2)
        return self

    def put(self, key: str, data: bytes = b"x") -> None:
        from runs.storage import minio_client

        minio_client(self.store).put_object(
            self.bucket.name, key, io.BytesIO(data), len(data), content_type="text/plain"
        )

    def wait_run(self, run_key: str, timeout: float = 30.0):
        from runs.models import Run

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = Run.objects.filter(bucket=self.bucket, run_key=run_key).first()
            if run:
                return run
            time.sleep(0.1)
        raise SystemExit(f"run {run_key} never arrived; is the consumer running?")

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.bucket is not None:
            from runs.storage import minio_client

            client = minio_client(self.store)
            if self.store == "default":
                client.delete_bucket_notification(self.bucket.name)
            for obj in client.list_objects(self.bucket.name, recursive=True):
                client.remove_object(self.bucket.name, obj.object_name)
            client.remove_bucket(self.bucket.name)


@contextmanager
def live_services(db_url: str, *, layer: str = "pubsub"):
    services = Services(db_url, layer=layer)
    try:
        yield services.start()
    finally:
        services.stop()


def kafka_watch(bucket: str, prefix: str, seen: dict, stop: threading.Event, *, topic: str = "") -> None:
    """Note the arrival time of each measured event on the bucket's topic. MinIO keys
    its messages "<bucket>/<key>", SeaweedFS's filer "/buckets/<bucket>/<key>"."""
    from confluent_kafka import Consumer, TopicPartition
    from django.conf import settings

    topic = topic or settings.MINIO_KAFKA_TOPIC
    reader = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": "bench-watch",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,
        }
    )
    parts = reader.list_topics(topic, timeout=10).topics[topic].partitions
    reader.assign(
        [TopicPartition(topic, p, reader.get_watermark_offsets(TopicPartition(topic, p))[1]) for p in parts]
    )
    try:
        while not stop.is_set():
            msg = reader.poll(0.05)
            if msg is None or msg.error():
                continue
            key = (msg.key() or b"").decode(errors="replace").removeprefix("/buckets/")
            if key.startswith(f"{bucket}/{prefix}"):
                seen.setdefault(key[len(bucket) + 1 :], time.monotonic())
    finally:
        reader.close()
