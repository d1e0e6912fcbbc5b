"""/healthz and /readyz (vizsite/probes.py, vizsite/readiness.py) and ``manage.py check_ready``.

The happy path against the real services; "down" by pointing one check at a
private service this test starts and stops (a redis-server of its own, a
proxy to PostgreSQL that it cuts, a loopback port nothing listens on), never
by touching the shared services.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from tests.helpers import database_url, wait_for
from tests.tcp_proxy import TCPProxy

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> int:
    """A loopback port nobody listens on (bound, released: connecting is refused)."""
    return free_port()


class PrivateRedis:
    """A redis-server of this test's own, with a password, on a free loopback port."""

    password = "private-redis-secret-for-the-test"

    def __init__(self, tmp_path: Path):
        self.port = free_port()
        self.dir = tmp_path
        self.url = f"redis://:{self.password}@127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> "PrivateRedis":
        server = shutil.which("redis-server")
        assert server, "redis-server is not installed (deploy/local/redis.sh installs it)"
        self.proc = subprocess.Popen(
            [server, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--requirepass", self.password, "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return True
            except OSError:
                return False

        wait_for(answers, what="the private redis-server")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path).start()
    yield server
    server.stop()


def readyz(client) -> tuple[int, dict]:
    response = client.get("/readyz")
    return response.status_code, json.loads(response.content)


# --- /healthz: the process, nothing else --------------------------------------------------


def test_healthz_answers_whatever_the_host_without_https_or_login(client, settings):
    """A kubelet probes the pod's IP over plain HTTP: no 400 for the host, no 301 to https."""
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="10.42.0.17:8000")
    assert response.status_code == 200
    assert json.loads(response.content) == {"ok": True}
    assert response["Cache-Control"] == "no-store"
    assert "sessionid" not in response.cookies
    # The path still means only the probe; anything else still gets the host check.
    assert client.get("/accounts/login/", HTTP_HOST="10.42.0.17:8000").status_code == 400


def test_probes_take_get_and_head_only(client):
    assert client.post("/healthz").status_code == 405
    assert client.head("/healthz").status_code == 200


# --- /readyz on the real services -------------------------------------------------------------


def test_readyz_is_ready_and_names_every_check_when_all_services_answer(client, db, minio, kafka_bootstrap):
    status, report = readyz(client)
    assert status == 200, report
    assert report["ok"] is True and report["failed"] == []
    expected = {"database", "kafka", "redis:channels", "redis:broker"} | {
        f"store:{alias}" for alias in settings.OBJECT_STORES
    }
    assert expected <= set(report["checks"])
    assert all(check["ok"] for check in report["checks"].values())


def test_readyz_names_redis_when_it_stops_and_never_shows_its_password(
    client, db, minio, kafka_bootstrap, private_redis, settings
):
    layer = settings.CHANNEL_LAYERS["default"]
    settings.CHANNEL_LAYERS = {
        "default": {**layer, "CONFIG": {**layer["CONFIG"], "hosts": [private_redis.url]}}
    }
    status, report = readyz(client)
    assert status == 200, report
    private_redis.stop()
    response = client.get("/readyz")
    report = json.loads(response.content)
    assert response.status_code == 503
    assert report["ok"] is False and report["failed"] == ["redis:channels"]
    assert report["checks"]["redis:channels"]["error"].startswith("unreachable")
    assert private_redis.password.encode() not in response.content
    assert str(private_redis.port).encode() not in response.content


def test_readyz_names_redis_that_accepts_but_never_answers(client, db, settings):
    """A hung service (the handshake completes, nothing comes back) fails its check in time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # never accept(): connections wait in the backlog, unanswered
    try:
        settings.READINESS_TIMEOUT_S = 0.5
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{listener.getsockname()[1]}/1"
        status, report = readyz(client)
    finally:
        listener.close()
    assert status == 503
    assert "redis:broker" in report["failed"]
    assert report["checks"]["redis:broker"]["error"].startswith("unreachable")


def test_readyz_names_kafka_when_no_broker_answers(client, db, settings):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{closed_port()}"
    status, report = readyz(client)
    assert status == 503
    assert "kafka" in report["failed"]
    assert report["checks"]["kafka"]["error"].startswith("unreachable")


def test_readyz_names_the_object_store_that_is_down_or_refuses_the_keys(client, db, minio, settings):
    real = settings.OBJECT_STORES["default"]
    settings.OBJECT_STORES = {
        "default": real,
        "gone": {**real, "endpoint": f"127.0.0.1:{closed_port()}"},
        "wrongkey": {**real, "secret_key": "not-the-secret"},
    }
    response = client.get("/readyz")
    report = json.loads(response.content)
    assert response.status_code == 503
    assert {"store:gone", "store:wrongkey"} <= set(report["failed"])
    assert "store:default" not in report["failed"]
    assert report["checks"]["store:gone"]["error"].startswith("unreachable")
    assert report["checks"]["store:wrongkey"]["error"].startswith("credentials refused")
    assert b"not-the-secret" not in response.content and real["access_key"].encode() not in response.content


# --- manage.py check_ready: the same answer for processes without HTTP --------------------


def check_ready(db_port: int) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.test",
        "DATABASE_URL": database_url(db_port, application_name="pipelens-test-check-ready"),
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check_ready"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_ready_names_the_database_when_its_link_is_cut(db, minio, kafka_bootstrap):
    s = connection.settings_dict
    proxy = TCPProxy(s["HOST"], int(s["PORT"])).start()
    try:
        up = check_ready(proxy.port)
        assert up.returncode == 0, up.stdout + up.stderr
        assert json.loads(up.stdout.strip().splitlines()[-1])["ok"] is True
        proxy.cut()
        down = check_ready(proxy.port)
    finally:
        proxy.cut()
    assert down.returncode == 1
    report = json.loads(down.stdout.strip().splitlines()[-1])
    assert report["failed"] == ["database"]
    assert "not ready: database" in down.stderr
    assert s["PASSWORD"] not in down.stdout


# --- the real server under production settings ----------------------------------------------


def test_daphne_under_production_settings_answers_probes_by_ip_over_plain_http(
    db, minio, kafka_bootstrap, tmp_path
):
    """What a kubelet sees: production settings (HTTPS redirect, HSTS, a real host name in
    ALLOWED_HOSTS), the pod addressed by IP over HTTP. The probes answer; pages do not."""
    from tests.test_production_settings import SECRETS, _clean_environment

    store = settings.OBJECT_STORES["default"]
    env = {
        **_clean_environment(),
        **SECRETS,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.production",
        "DATABASE_URL": database_url(application_name="pipelens-test-probes-daphne"),
        "REDIS_URL": settings.REDIS_URL,
        "MINIO_ENDPOINT": store["endpoint"],
        "MINIO_ACCESS_KEY": store["access_key"],
        "MINIO_SECRET_KEY": store["secret_key"],
    }
    port = free_port()
    daphne = str(Path(sys.executable).with_name("daphne"))
    log = tmp_path / "daphne.log"
    proc = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "vizsite.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )

    def get(path: str) -> tuple[int, bytes, dict]:
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Host": "10.42.0.17"})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), dict(exc.headers)

    def up():
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            return get("/healthz")
        except OSError:
            return None

    try:
        status, body, _ = wait_for(up, timeout=30, what="daphne")
        assert (status, json.loads(body)) == (200, {"ok": True})
        status, body, _ = get("/readyz")
        assert status == 200, body
        assert json.loads(body)["ok"] is True
        # A page at the same address is refused (unknown host); the probes were exempt, not the site.
        assert get("/accounts/login/")[0] == 400
    finally:
        proc.terminate()
        proc.wait(30)
        from tests.conftest import wait_db_sessions_gone

        wait_db_sessions_gone("pipelens-test-probes-daphne")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects come back as answers (HTTPError 30x) instead of being followed."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None
