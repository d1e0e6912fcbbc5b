"""Browser-test fixtures: a real daphne serving the pytest database, Debian's Chromium.

daphne runs as a subprocess on a free loopback port against the test
database (so the data must be committed: these tests use ``live_bucket``,
which is transactional); the ingest consumer runs in this process
(``running_consumer``) and pushes through the real Redis channel layer.
Screenshots go to ``test-results/e2e/`` (ignored by git).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results" / "e2e"
CHROMIUM = "/usr/bin/chromium"
APP_NAME = "pipelens-e2e-daphne"  # marks the server's database sessions
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Playwright's sync API keeps an event loop on this thread; the test's own
# ORM calls are ordinary blocking calls between browser steps.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daphne:
    """``daphne vizsite.asgi:application`` in a subprocess; can be restarted on the same port."""

    def __init__(self, database_url: str, port: int, log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Daphne":
        daphne = str(Path(sys.executable).with_name("daphne"))
        self.proc = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(self.port), "vizsite.asgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"daphne exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/accounts/login/", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"daphne did not answer within 30 s: {self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        # PostgreSQL notices a dead client a moment later; wait, so that the
        # test database can be dropped at the end of the session.
        from django.db import connection

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [APP_NAME]
                )
                if cursor.fetchone()[0] == 0:
                    return
            time.sleep(0.05)


@pytest.fixture
def live_server_daphne(transactional_db):
    from django.db import connection

    s = connection.settings_dict
    url = (
        f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"
        f"?application_name={APP_NAME}"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    server = Daphne(url, free_port(), RESULTS / "daphne.log").start()
    yield server
    server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.e2e_failed = report.failed


@pytest.fixture
def browser_page(request):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"Debian's Chromium is missing at {CHROMIUM}: run `make test` (deploy/local/install-browser.sh)"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 900})
        page = context.new_page()
        try:
            yield page
            if getattr(request.node, "e2e_failed", False):
                # What the browser showed when the test failed, with its live indicator.
                screenshot(page, f"FAILED-{request.node.name}")
                status = page.locator("#live-status")
                if status.count():
                    print("live-status:", status.get_attribute("data-state"), status.inner_text())
        finally:
            context.close()
            browser.close()


def log_in(page, base_url: str, username: str, password: str) -> None:
    """Log in through the login form, as a user would; lands on the runs list."""
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/")


def screenshot(page, name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class KafkaArrivals:
    """Notes when each event about ``bucket`` reaches the MinIO topic (a raw reader from the end).

    MinIO with a queue dir (deploy/local/minio.sh) writes each event to its
    disk queue and a replay loop sends the queue every 3 s (MinIO's
    internal/store retryInterval), so put -> Kafka alone is 0-3 s. Tests time
    the portal's own part from the event's arrival on the topic.
    """

    def __init__(self, bucket: str):
        import threading

        self.bucket = bucket
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="kafka-arrivals")

    def _run(self):
        from confluent_kafka import Consumer, TopicPartition
        from django.conf import settings

        topic = settings.MINIO_KAFKA_TOPIC
        reader = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "group.id": "e2e-arrivals",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
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
            self._ready.set()
            while not self._stop.is_set():
                msg = reader.poll(0.05)
                if msg is None or msg.error():
                    continue
                key = (msg.key() or b"").decode()
                if key.startswith(self.bucket + "/"):
                    self.seen.setdefault(key[len(self.bucket) + 1 :], time.monotonic())
        finally:
            self._ready.set()
            reader.close()

    def start(self) -> "KafkaArrivals":
        self._thread.start()
        assert self._ready.wait(20), "Kafka reader did not start"
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(10)

    def wait(self, key: str, timeout: float = 10.0) -> float:
        deadline = time.monotonic() + timeout
        while key not in self.seen:
            if time.monotonic() > deadline:
                pytest.fail(f"event for {key} never reached Kafka within {timeout} s")
            time.sleep(0.01)
        return self.seen[key]


@pytest.fixture
def kafka_arrivals(live_bucket):
    watcher = KafkaArrivals(live_bucket.name).start()
    yield watcher
    watcher.stop()
