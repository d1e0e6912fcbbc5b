"""A private Kafka broker and MinIO server for fault tests (tests/streaming/ingest/test_reconcile_faults.py).

Fault tests stop Kafka for a minute and let a topic's retention pass; doing
that to the shared local services would break every other test and `make run`.
These are the same binaries deploy/local installed (.local/kafka/libs,
.local/bin/minio), on free loopback ports, with their data in the test's
temporary directory, and MinIO configured the way docs/reconcile.md recommends
for production: Kafka target without a queue dir and with asynchronous events
(each sent as its PUT completes, without holding the PUT; dropped while Kafka is
down). Both stop with the test.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / ".local"
USER, PASSWORD = "fault-user", "fault-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, what: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited ({proc.returncode}); log: {log.read_text()[-2000:]}")
        if check():
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready after {timeout}s; log: {log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen | None, timeout: float = 30.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


class PrivateKafka:
    """A single-node KRaft broker; ``stop()`` and ``start()`` keep its data (an outage, not a reset)."""

    def __init__(self, home: Path):
        libs = LOCAL / "kafka" / "libs"
        if not libs.is_dir():
            raise RuntimeError(f"{libs} is missing: `make services` downloads the Kafka jars")
        self.home, self.libs = home, libs
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log = home / "kafka.log"
        home.mkdir(parents=True, exist_ok=True)
        self.conf = home / "server.properties"
        self.conf.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={home / 'data'}",
                    "num.partitions=2",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "auto.create.topics.enable=true",
                    "group.initial.rebalance.delay.ms=0",
                    # Retention is checked every second (default 5 min), so a
                    # test topic's short retention passes within the test.
                    "log.retention.check.interval.ms=1000",
                    "num.network.threads=1",
                    "num.io.threads=1",
                ]
            )
            + "\n"
        )
        cluster = subprocess.run(
            self._java("kafka.tools.StorageTool", "random-uuid"), capture_output=True, text=True, check=True
        ).stdout.split()[-1]
        subprocess.run(
            self._java("kafka.tools.StorageTool", "format", "-t", cluster, "-c", str(self.conf)),
            capture_output=True,
            check=True,
        )

    def _java(self, *args: str) -> list[str]:
        return ["java", "-Xmx384m", "-Xms64m", "-Djava.awt.headless=true", "-cp", f"{self.libs}/*", *args]

    def start(self) -> None:
        from confluent_kafka.admin import AdminClient

        self.proc = subprocess.Popen(
            self._java("kafka.Kafka", str(self.conf)),
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def ready() -> bool:
            admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
            try:
                return bool(admin.list_topics(timeout=2).brokers)
            except Exception:
                return False

        _wait(ready, "private kafka", self.proc, self.log)

    def stop(self) -> None:
        _stop(self.proc)
        self.proc = None


class PrivateMinio:
    """MinIO with one Kafka target (id FAULT) on ``topic`` of ``kafka``, no queue dir, async events."""

    ARN = "arn:minio:sqs::FAULT:kafka"

    def __init__(self, home: Path, kafka: PrivateKafka, topic: str):
        binary = LOCAL / "bin" / "minio"
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: `make services` builds it")
        self.port, self.console_port = free_port(), free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        self.log = home / "minio.log"
        (home / "minio").mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": USER,
            "MINIO_ROOT_PASSWORD": PASSWORD,
            "MINIO_NOTIFY_KAFKA_ENABLE_FAULT": "on",
            "MINIO_NOTIFY_KAFKA_BROKERS_FAULT": kafka.bootstrap,
            "MINIO_NOTIFY_KAFKA_TOPIC_FAULT": topic,
            "MINIO_API_SYNC_EVENTS": "off",
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
        }
        self.proc = subprocess.Popen(
            [
                str(binary),
                "server",
                str(home / "minio"),
                "--address",
                self.endpoint,
                "--console-address",
                f"127.0.0.1:{self.console_port}",
            ],  # fmt: skip
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def ready() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    pass
            except OSError:
                return False
            try:
                self.client().list_buckets()
                return True
            except Exception:
                return False

        _wait(ready, "private minio", self.proc, self.log)

    def client(self):
        from minio import Minio

        return Minio(self.endpoint, access_key=USER, secret_key=PASSWORD, secure=False)

    def store_config(self) -> dict:
        """An OBJECT_STORES entry for this server."""
        return {
            "endpoint": self.endpoint,
            "access_key": USER,
            "secret_key": PASSWORD,
            "secure": False,
            "kind": "minio",
        }

    def stop(self) -> None:
        _stop(self.proc)
