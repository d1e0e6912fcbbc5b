"""Shared fixtures. Integration fixtures talk to the real local services and
fail loudly (never skip) when one is missing: start them with `make services`."""

import socket
import threading
import time
import uuid

import pytest
from django.conf import settings

from tests.helpers import database_url, wait_for  # noqa: F401 - wait_for: fixtures below

# --- tiers: `make test-fast` runs what needs no service (pytest -m "not integration and not e2e")

# Fixtures that reach a real service; a test using one (or the database) is an
# integration test, marked here so that nobody has to remember to.
_SERVICE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_setup",
        "live_bucket",
        "minio",
        "seaweedfs",
        "seaweed_bucket",
        "seaweed_consumer",
        "kafka_bootstrap",
        "running_consumer",
        "celery_worker_process",
        "sandbox_worker_process",
        "live_server",
        "client_with_db",
    }
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in item.nodeid or item.nodeid.startswith("e2e/"):
            item.add_marker(pytest.mark.e2e)
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("django_db") or fixtures & _SERVICE_FIXTURES:
            item.add_marker(pytest.mark.integration)


def _tcp_check(name: str, hostport: str) -> None:
    host, _, port = hostport.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return
    except OSError as exc:
        pytest.fail(
            f"{name} is not reachable at {hostport} ({exc}); run `make services` first", pytrace=False
        )


@pytest.fixture(autouse=True)
def _fresh_login_counters():
    """Login throttling counters (vizsite/accounts.py) live in a per-process LocMemCache
    under the test settings; each test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(scope="session")
def minio():
    """The real MinIO, through the official client."""
    from runs.storage import minio_client

    _tcp_check("MinIO", settings.MINIO_ENDPOINT)
    return minio_client()


@pytest.fixture(scope="session")
def kafka_bootstrap():
    """The real Kafka, with the session's MinIO topic (settings.MINIO_KAFKA_TOPIC, the
    test topic): created now, deleted after the last session on the machine using it."""
    from streaming.ingest.session_topics import session_topic

    _tcp_check("Kafka", settings.KAFKA_BOOTSTRAP_SERVERS.split(",")[0])
    with session_topic(settings.MINIO_KAFKA_TOPIC, bootstrap=settings.KAFKA_BOOTSTRAP_SERVERS):
        yield settings.KAFKA_BOOTSTRAP_SERVERS


@pytest.fixture
def unique_name():
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def live_bucket(transactional_db, minio, kafka_bootstrap, unique_name):
    """A fresh MinIO bucket publishing to the test topic, registered in Pipelens."""
    from runs.models import Bucket
    from runs.services.buckets import bucket_register

    bucket = bucket_register(name=unique_name("t"))
    if "destination ARN does not exist" in bucket.notification_error:
        minio.remove_bucket(bucket.name)
        pytest.fail(
            f"MinIO has no notification target {settings.MINIO_NOTIFY_ARN} "
            f"({bucket.notification_error}); it was started by an older deploy/local/minio.sh: "
            "bash deploy/local/services.sh down minio && bash deploy/local/services.sh up minio",
            pytrace=False,
        )
    assert bucket.notification_status == Bucket.NotificationStatus.CONFIGURED, bucket.notification_error
    yield bucket
    # Stop publishing first: clean-up events must not reach later tests.
    minio.delete_bucket_notification(bucket.name)
    for obj in minio.list_objects(bucket.name, recursive=True):
        minio.remove_object(bucket.name, obj.object_name)
    minio.remove_bucket(bucket.name)


@pytest.fixture
def registered_bucket(transactional_db, minio, unique_name):
    """A fresh MinIO bucket registered in Pipelens (its events go to the test topic; nothing
    consumes them unless the test starts a consumer): what a reconciliation lists."""
    from runs.services.buckets import bucket_register

    bucket = bucket_register(name=unique_name("reg"))
    yield bucket
    minio.delete_bucket_notification(bucket.name)
    for obj in minio.list_objects(bucket.name, recursive=True):
        minio.remove_object(bucket.name, obj.object_name)
    minio.remove_bucket(bucket.name)


def _coordinator_not_ready() -> frozenset[int]:
    from confluent_kafka import KafkaError

    return frozenset(
        {
            KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
            KafkaError.COORDINATOR_NOT_AVAILABLE,
            KafkaError.NOT_COORDINATOR,
            KafkaError.REQUEST_TIMED_OUT,
            KafkaError._TIMED_OUT,
        }
    )


_COORDINATOR_NOT_READY = _coordinator_not_ready()


def skip_to_end(*, group_id: str, topic: str) -> None:
    """Commit the topic's current end offsets for ``group_id``, so a new test
    consumer reads only what the test itself produces."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    from streaming.ingest.kafka_config import consumer_config

    consumer = Consumer(consumer_config(group_id=group_id))
    try:
        meta = consumer.list_topics(topic, timeout=10)
        partitions = sorted(meta.topics[topic].partitions)
        assert partitions, f"topic {topic} has no partitions"
        ends = []
        for p in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends.append(TopicPartition(topic, p, high))
        # The coordinator of a new group's offsets partition may still be loading
        # (clean-clone CI met COORDINATOR_LOAD_IN_PROGRESS): librdkafka does not flag
        # that commit error retriable, so the coordinator codes are named here.
        deadline = time.monotonic() + 30
        while True:
            try:
                consumer.commit(offsets=ends, asynchronous=False)
                break
            except KafkaException as exc:
                error = exc.args[0]
                transient = error.retriable() or error.code() in _COORDINATOR_NOT_READY
                if not transient or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        consumer.close()


class ConsumerThread:
    """``IngestConsumer`` running in a thread of the test process."""

    def __init__(self, group_id: str):
        from streaming.ingest.kafka_loop import IngestConsumer

        self.group_id = group_id
        self.consumer = IngestConsumer(group_id=group_id, topic_refresh_s=0.2, batch_timeout_s=0.05)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="test-consumer", daemon=True)

    def _run(self):
        from django.db import connection

        try:
            self.consumer.run()
        except BaseException as exc:  # surfaced by the fixture
            self.error = exc
        finally:
            connection.close()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.consumer.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "consumer did not stop within 30 s"
        if self.error:
            raise self.error


@pytest.fixture
def running_consumer(live_bucket, unique_name):
    """The ingest consumer, in a thread, reading only what this test produces."""
    group = unique_name("test-group")
    skip_to_end(group_id=group, topic=settings.MINIO_KAFKA_TOPIC)
    worker = ConsumerThread(group).start()
    yield worker
    worker.stop()


# --- SeaweedFS (deploy/local/seaweedfs.sh; docs/stores.md) --------------------------


@pytest.fixture(scope="session")
def seaweedfs(kafka_bootstrap):
    """The real SeaweedFS S3 gateway (store alias "seaweedfs"), through the official
    client, with the topic its filer publishes to. Missing is a failure, never a skip."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from runs.storage import minio_client

    if "seaweedfs" not in settings.OBJECT_STORES:
        pytest.fail(
            "no SeaweedFS store: SEAWEEDFS_ENDPOINT is not set; run the tests through "
            "deploy/local/with-env.sh (make test does)",
            pytrace=False,
        )
    endpoint = settings.OBJECT_STORES["seaweedfs"]["endpoint"]
    try:
        with socket.create_connection(tuple(endpoint.rsplit(":", 1)), timeout=2):
            pass
    except OSError as exc:
        pytest.fail(
            f"SeaweedFS is not reachable at {endpoint} ({exc}); `make services` builds .local/bin/weed "
            "and starts it (bash deploy/local/services.sh up seaweedfs)",
            pytrace=False,
        )
    # The filer creates its topic on its first message; the consumer follows only
    # topics that exist, so make sure it does before the first test.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = settings.SEAWEEDFS_KAFKA_TOPIC
    if topic not in admin.list_topics(timeout=10).topics:
        for future in admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)]).values():
            try:
                future.result()
            except Exception as exc:  # created meanwhile by the filer or another session
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise
    return minio_client("seaweedfs")


@pytest.fixture
def seaweed_bucket(transactional_db, seaweedfs, unique_name):
    """A fresh SeaweedFS bucket registered in Pipelens on the filer's topic."""
    from runs.models import Bucket
    from runs.services.buckets import bucket_register

    bucket = bucket_register(name=unique_name("sw"), store="seaweedfs")
    assert bucket.notification_status == Bucket.NotificationStatus.IN_FILER_CONFIG, bucket.notification_error
    yield bucket
    for obj in seaweedfs.list_objects(bucket.name, recursive=True):
        seaweedfs.remove_object(bucket.name, obj.object_name)
    seaweedfs.remove_bucket(bucket.name)


@pytest.fixture
def seaweed_consumer(seaweed_bucket, unique_name):
    """The ingest consumer, in a thread, reading only what this test makes the filer publish."""
    group = unique_name("test-group")
    skip_to_end(group_id=group, topic=settings.SEAWEEDFS_KAFKA_TOPIC)
    skip_to_end(group_id=group, topic=settings.MINIO_KAFKA_TOPIC)  # for a test that also has a MinIO bucket
    worker = ConsumerThread(group).start()
    yield worker
    worker.stop()


# --- Celery render worker (runs/tasks.py; docs/viewers.md) ---------------------------


def wait_db_sessions_gone(app_name: str, timeout: float = 10.0) -> None:
    """Wait until PostgreSQL has noticed a stopped subprocess's sessions end, so the
    test database can be dropped at the end of the session."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [app_name])
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)


class WorkerProcess:
    """``celery -A vizsite worker`` in a subprocess, consuming one test-only queue."""

    def __init__(self, queue: str, log_path, env: dict):
        self.queue, self.log_path, self.env = queue, log_path, env
        self.proc = None

    def start(self) -> "WorkerProcess":
        import subprocess
        import sys

        from django.conf import settings as dj

        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "vizsite",
            "worker",
            "-Q",
            self.queue,
            "-c",
            "1",
            "-P",
            "prefork",
            "-n",
            f"{self.queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "INFO",
        ]
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen(
            cmd,
            cwd=dj.BASE_DIR,
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(
            lambda: self.proc.poll() is not None or b" ready." in self.log_path.read_bytes()[offset:],
            timeout=60,
            what="the Celery worker to start",
        )
        assert self.proc.poll() is None, f"worker exited:\n{self.log().decode()[-3000:]}"
        return self

    def log(self) -> bytes:
        return self.log_path.read_bytes()

    def task_pids(self) -> list[int]:
        import psutil

        return [c.pid for c in psutil.Process(self.proc.pid).children()]

    def stop(self) -> None:
        import os
        import signal

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except Exception:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        wait_db_sessions_gone("pipelens-test-worker")


@pytest.fixture
def celery_worker_process(transactional_db, settings, minio, unique_name, tmp_path):
    """A real render worker (own process, real Redis broker) on a queue only this test uses.

    The test process queues to the same queue (``settings.RENDER_QUEUE``), so
    the on-commit hooks of the consumer and services reach this worker.
    """
    import os

    import redis

    _tcp_check("Redis", settings.CELERY_BROKER_URL.split("//", 1)[1].split("/", 1)[0])
    queue = unique_name("render-test")
    settings.RENDER_QUEUE = queue
    # Where this worker sends recipe jobs (sandbox_worker_process serves it).
    settings.SANDBOX_QUEUE = unique_name("sandbox-test")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
        "DATABASE_URL": database_url(application_name="pipelens-test-worker"),
        "RENDER_QUEUE": queue,
        "SANDBOX_QUEUE": settings.SANDBOX_QUEUE,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "RENDER_RETRY_BACKOFF_S": "0.5",
    }
    worker = WorkerProcess(queue, tmp_path / "worker.log", env).start()
    yield worker
    worker.stop()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue, f"_kombu.binding.{queue}")


@pytest.fixture
def sandbox_worker_process(celery_worker_process, settings, unique_name, tmp_path):
    """The recipe sandbox worker (its own process, real Redis broker) on a queue only this
    test uses, with short limits; ``DJANGO_SECRET_KEY`` is a canary recipes must not see.

    Recipe runs take the render worker too (celery_worker_process: it claims, reads and
    stores). The sandbox worker gets no database: its DATABASE_URL points at a port
    nothing listens on, so a query there would fail the run (docs/deploy.md#network-policy).
    """
    import os

    import redis

    queue = settings.SANDBOX_QUEUE  # the one the render worker sends jobs to
    settings.RECIPES_ENABLED = True
    canary = unique_name("canary-secret")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
        "DATABASE_URL": NO_DATABASE_URL,
        "SANDBOX_QUEUE": queue,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "DJANGO_SECRET_KEY": canary,
        "SANDBOX_WALL_S": "8",
        "SANDBOX_CPU_S": "3",
    }
    worker = WorkerProcess(queue, tmp_path / "sandbox-worker.log", env).start()
    worker.canary = canary
    yield worker
    worker.stop()
    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(queue, f"_kombu.binding.{queue}")


# The web-app origin has no database: its DATABASE_URL points at a port nothing listens on,
# so any query it tried would fail the test (docs/deploy.md#network-policy).
NO_DATABASE_URL = "postgres://nobody:nothing@127.0.0.1:9/none"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Daphne:
    """A daphne subprocess serving ``asgi_app``, up once ``probe_path`` answers (any HTTP status)."""

    asgi_app = ""
    probe_path = "/"
    what = "daphne"

    def __init__(self, log_path, **env):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = env

    def _env(self) -> dict:
        return dict(self.env)

    def start(self):
        import os
        import subprocess
        import sys
        import urllib.error
        import urllib.request

        from django.conf import settings as dj

        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "vizsite.settings.test", **self._env()}
        daphne = os.path.join(os.path.dirname(sys.executable), "daphne")
        self.proc = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(self.port), self.asgi_app],
            cwd=dj.BASE_DIR,
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

        def up():
            assert self.proc.poll() is None, self.log_path.read_text()[-2000:]
            try:
                urllib.request.urlopen(self.url + self.probe_path, timeout=1)
                return True
            except urllib.error.HTTPError:
                return True  # e.g. 404 for "/": it answers
            except OSError:
                return False

        wait_for(up, timeout=30, what=self.what)
        return self

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)


class PortalServer(_Daphne):
    """The portal (``daphne vizsite.asgi:application``) in a subprocess, on the test database."""

    asgi_app = "vizsite.asgi:application"
    probe_path = "/healthz"
    what = "the portal server"

    def _env(self) -> dict:
        return {
            "DATABASE_URL": database_url(application_name="pipelens-test-portal"),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            **self.env,
        }

    def stop(self) -> None:
        super().stop()
        wait_db_sessions_gone("pipelens-test-portal")


class WebAppServer(_Daphne):
    """The web-app origin (``daphne vizsite.webapp_asgi:application``) in a subprocess, with
    no database (NO_DATABASE_URL) and its documents from the portal at ``portal_url``."""

    asgi_app = "vizsite.webapp_asgi:application"
    what = "the web-app origin server"

    def __init__(self, log_path, *, portal_url: str, **env):
        super().__init__(log_path, **env)
        self.portal_url = portal_url

    def _env(self) -> dict:
        return {"DATABASE_URL": NO_DATABASE_URL, "WEBAPP_PORTAL_URL": self.portal_url, **self.env}


@pytest.fixture
def webapp_origin(transactional_db, tmp_path):
    """Starts web-app origin servers: ``webapp_origin(portal_url=None, **env)`` → a running
    WebAppServer fetching its documents from ``portal_url``, or, when None, from a portal
    server started here for it."""
    servers = []

    def start(portal_url: str | None = None, **env):
        if portal_url is None:
            # Same settings on both sides (the token's lifetime is checked by the portal).
            portal = PortalServer(tmp_path / f"portal-{len(servers)}.log", **env).start()
            servers.append(portal)
            portal_url = portal.url
        servers.append(
            WebAppServer(tmp_path / f"webapp-{len(servers)}.log", portal_url=portal_url, **env).start()
        )
        return servers[-1]

    yield start
    for server in servers:
        server.stop()
