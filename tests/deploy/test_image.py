"""Acceptance smoke test of the OCI image (issue 14; docs/deploy.md, "The image").

Every role runs from the image built by ``make image``, with podman and host
networking, against the local services already running (``make services``):

- ``migrate`` creates the schema in a database of its own (``<db>_image_<run>``,
  made here, dropped at the end), so the shared database is never migrated
  under anyone;
- ``manage setup_demo`` makes a login and registers a bucket of our own, wired
  to the test notification target (the test topic, held like a test session);
- ``web``, ``webapp``, ``consume``, ``worker`` and ``sandbox-worker`` start
  detached, read-only (``--read-only --tmpfs /tmp``), as the image's user,
  on ports, queues, a consumer group and key prefixes of their own;
- ``/readyz`` answers 200; an object uploaded with the MinIO client appears in
  the portal (logged in, through the image's consumer) and its preview is made
  by the image's render worker; a recipe posted through the portal's API runs
  in the image's sandbox worker; ``backfill`` runs to the end; and each role
  ends by itself, exit code 0, on SIGTERM.

Slow (the image must exist: ``make image``), so ``make test`` does not collect
it: ``make image-smoke`` runs it (tests/deploy/conftest.py). Nothing is skipped:
a missing podman or image fails the test, saying what to run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from django.conf import settings

from tests.helpers import put, wait_for

# Startup, three waits of up to WORK_S and the clean-up exceed the suite default (300 s).
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
FLAGS_FILE = "deploy/docker/podman-flags.sh"
IMAGE = os.environ.get("PIPELENS_IMAGE", "localhost/pipelens:latest")
# The container's user (deploy/docker/Containerfile).
IMAGE_UID = "10001"
ROLES = ("web", "webapp", "consume", "worker", "sandbox-worker")
CREDENTIALS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY")
# Startup includes Django's import and the services' first answers; renders and
# recipes run on two cores shared with everyone's work.
START_S = 120
WORK_S = 180

CSV = b"epoch,loss,accuracy\n" + b"".join(b"%d,%f,%f\n" % (i, 1 / (i + 1), i / 50) for i in range(50))
RECIPE = '''"""Smoke-test recipe: the CSV's first rows as a table."""
import pandas as pd
from pipelens import Table


def render(path, meta):
    df = pd.read_csv(path)
    return Table(list(df.columns), df.head(5).values.tolist())
'''


def podman_flags() -> list[str]:
    """The flags podman needs on this machine kind, from the one place that lists them."""
    out = subprocess.run(
        ["bash", "-c", 'source "$1"; printf "%s\\n" "${PODMAN_RUNTIME_FLAGS[@]}"', "-", FLAGS_FILE],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return out.split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def own_database_url(tag: str) -> str:
    """DATABASE_URL (the shared local database) renamed ``<name>_image_<tag>``: this run's own."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        pytest.fail("DATABASE_URL is not set: run through deploy/local/with-env.sh (make image-smoke)")
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + f"_image_{tag}"))


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit(parts._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}" WITH (FORCE)')


@dataclass
class Deployment:
    """The image's roles running against the local services, and what they were given."""

    tag: str
    env: dict[str, str]
    flags: list[str]
    web_port: int
    webapp_port: int
    bucket: str
    password: str
    containers: dict[str, str] = field(default_factory=dict)

    def podman(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["podman", *args], capture_output=True, text=True, check=check, timeout=timeout)

    def env_args(self, role: str = "") -> list[str]:
        # The web-app origin and the sandbox worker start without any credential, as their
        # Kubernetes pods do (vizsite/settings/production.py CREDENTIAL_FREE_ROLES).
        env = self.env
        if role in ("webapp", "sandbox-worker"):
            env = {k: v for k, v in env.items() if k not in CREDENTIALS}
        return [a for k, v in env.items() for a in ("--env", f"{k}={v}")]

    def run_once(self, *command: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """A one-off container of the image (``--rm``), in the foreground; fails with its output."""
        done = self.podman(
            "run", "--rm", *self.flags, "--read-only", "--tmpfs", "/tmp", *self.env_args(), IMAGE, *command,
            check=False, timeout=timeout,
        )  # fmt: skip
        said = f"{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, f"`{' '.join(command)}` exited {done.returncode}:\n{said}"
        return done

    def start(self, role: str) -> None:
        name = f"pipelens-smoke-{self.tag}-{role}"
        self.podman(
            # No --rm: the exit code of a stopped role is read before its removal. Hardened
            # as deploy/compose and deploy/k8s run it: no capabilities, no privilege gain.
            "run", "--detach", "--name", name, *self.flags, "--read-only", "--tmpfs", "/tmp",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            *self.sandbox_flags(role), *self.env_args(role), IMAGE, role,
        )  # fmt: skip
        self.containers[role] = name

    @staticmethod
    def sandbox_flags(role: str) -> list[str]:
        # bwrap (an unprivileged user namespace, its own /proc) inside the container: the
        # runtime's masks over /proc forbid mounting a new one (docs/deploy.md).
        return ["--security-opt", "unmask=/proc/*"] if role == "sandbox-worker" else []

    def running(self, role: str) -> bool:
        out = self.podman("inspect", "--format", "{{.State.Running}}", self.containers[role], check=False)
        return out.stdout.strip() == "true"

    def wait(self, predicate, timeout: float, what: str):
        """wait_for, failing with the containers' last log lines."""
        try:
            return wait_for(predicate, timeout=timeout, interval=0.5, what=what)
        except pytest.fail.Exception as exc:
            pytest.fail(f"{exc}\n{self.logs()}", pytrace=False)

    def logs(self) -> str:
        parts = []
        for role, name in self.containers.items():
            out = self.podman("logs", "--tail", "40", name, check=False)
            parts.append(f"---- {role} ({name}) ----\n{out.stdout}{out.stderr}")
        return "\n".join(parts)

    def stop(self, role: str) -> int:
        """SIGTERM, as an orchestrator sends it, up to 30 s before SIGKILL; the exit code."""
        name = self.containers[role]
        self.podman("stop", "--time", "30", name, timeout=60)
        return int(self.podman("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())

    def stop_all(self) -> None:
        for name in self.containers.values():
            self.podman("rm", "--force", "--time", "10", name, check=False)


class Portal:
    """An HTTP client of the image's ``web`` role, as a browser behind the TLS proxy
    production has: X-Forwarded-Proto https (so no redirect, and the Secure cookies
    count), cookies kept by hand (Python's cookie jar keeps Secure ones from http)."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.origin = f"https://127.0.0.1:{port}"
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *, data: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-Forwarded-Proto", "https")
        req.add_header("X-Forwarded-For", "127.0.0.1")
        if self.cookies:
            req.add_header("Cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            resp = opener.open(req, timeout=30)
        except urllib.error.HTTPError as err:
            resp = err
        for header in resp.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return resp.status, resp.headers, resp.read()

    def get(self, path: str):
        return self.request("GET", path)

    def post(self, path: str, *, form: dict | None = None, body: dict | None = None, referer: str = "/"):
        headers = {
            "Origin": self.origin,
            "Referer": self.origin + referer,
            "X-CSRFToken": self.cookies.get("csrftoken", ""),
        }
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = urlencode(form).encode()
        else:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body or {}).encode()
        return self.request("POST", path, data=data, headers=headers)

    def login(self, username: str, password: str) -> None:
        status, _, page = self.get("/accounts/login/")
        assert status == 200, status
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        status, headers, page = self.post(
            "/accounts/login/",
            form={"username": username, "password": password, "csrfmiddlewaretoken": token},
            referer="/accounts/login/",
        )
        assert status == 302 and "sessionid" in self.cookies, (status, page[:2000])


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


@pytest.fixture(scope="module")
def deployment(minio, kafka_bootstrap):
    """Migrate a database of our own from the image, register a bucket, start every role."""
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: `make image` installs it and builds the image", pytrace=False)
    if subprocess.run(["podman", "image", "exists", IMAGE]).returncode != 0:
        pytest.fail(f"no image {IMAGE}: build it with `make image`", pytrace=False)
    tag = uuid.uuid4().hex[:8]
    web_port, webapp_port = free_port(), free_port()
    database_url = own_database_url(tag)
    recreate_database(database_url)
    store = settings.OBJECT_STORES["default"]
    env = {
        # What production requires (vizsite/settings/production.py), nothing development.
        "DJANGO_SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "DATABASE_URL": database_url,
        "REDIS_URL": os.environ["REDIS_URL"],
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        "MINIO_ENDPOINT": store["endpoint"],
        "MINIO_ACCESS_KEY": store["access_key"],
        "MINIO_SECRET_KEY": store["secret_key"],
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "WEBAPP_ORIGIN": f"http://localhost:{webapp_port}",
        # The web-app origin reads documents from the portal only (no database, no store).
        "WEBAPP_PORTAL_URL": f"http://127.0.0.1:{web_port}",
        # Ours alone: ports, queues, consumer group, Redis key prefixes; the bucket is
        # wired to the test topic (kafka_bootstrap holds it for this session).
        "PIPELENS_BIND": "127.0.0.1",
        "PIPELENS_WEB_PORT": str(web_port),
        "PIPELENS_WEBAPP_PORT": str(webapp_port),
        "RENDER_QUEUE": "render-image",
        "SANDBOX_QUEUE": "sandbox-image",
        "KAFKA_CONSUMER_GROUP": f"pipelens-image-smoke-{tag}",
        "MINIO_KAFKA_TOPIC": settings.MINIO_KAFKA_TOPIC,
        "MINIO_NOTIFY_ARN": settings.MINIO_NOTIFY_ARN,
        "CHANNEL_LAYER_PREFIX": f"pipelens-image-{tag}",
        "CACHE_KEY_PREFIX": f"pipelens-image-{tag}",
        "PREVIEW_BUCKET": f"pipelens-image-previews-{tag}",
        "RECIPES_ENABLED": "true",
        "KAFKA_TOPIC_REFRESH_S": "1",
    }
    d = Deployment(
        tag=tag,
        env=env,
        flags=podman_flags(),
        web_port=web_port,
        webapp_port=webapp_port,
        bucket=f"image-smoke-{tag}",
        password=uuid.uuid4().hex,
    )
    try:
        d.run_once("migrate")
        d.run_once(
            "manage", "setup_demo", "--bucket", d.bucket, "--username", "smoke", "--password", d.password,
            "--viewer", "smoke-viewer", "--viewer-password", uuid.uuid4().hex,
        )  # fmt: skip
        for role in ROLES:
            d.start(role)
        yield d
    finally:
        logs = d.logs()
        d.stop_all()
        drop_database(database_url)
        # Our bucket and the portal's preview bucket of this test: stop publishing, then empty.
        for name in (d.bucket, env["PREVIEW_BUCKET"]):
            if minio.bucket_exists(name):
                minio.delete_bucket_notification(name)
                for obj in minio.list_objects(name, recursive=True):
                    minio.remove_object(name, obj.object_name)
                minio.remove_bucket(name)
        print(logs)


def test_image_runs_as_its_unprivileged_user(deployment):
    out = deployment.run_once("id", "-u")
    assert out.stdout.strip() == IMAGE_UID


def test_every_role_stays_up_and_web_is_ready(deployment):
    d = deployment
    d.wait(
        lambda: http_status(f"http://127.0.0.1:{d.web_port}/readyz") == 200,
        START_S,
        "/readyz of the image's web role to answer 200",
    )
    # The web-app origin: its probe, its vendored Vega files, and nothing else.
    d.wait(
        lambda: http_status(f"http://127.0.0.1:{d.webapp_port}/healthz") == 200,
        START_S,
        "/healthz of the image's webapp role to answer 200",
    )
    assert http_status(f"http://127.0.0.1:{d.webapp_port}/vendor/vega/vega.min.js") == 200
    assert http_status(f"http://127.0.0.1:{d.webapp_port}/") == 404
    # Static files collected at build time, served by WhiteNoise (behind the proxy: plain
    # http is redirected to https by the production settings).
    assert Portal(d.web_port).get("/static/admin/css/base.css")[0] == 200
    for role in ROLES:
        assert d.running(role), f"{role} exited\n{d.logs()}"
    # The exec probe of the roles that serve no HTTP.
    d.run_once("check-ready")


def _artifact(portal: Portal, key: str) -> tuple[int, dict] | None:
    status, _, page = portal.get("/")
    assert status == 200, status
    for run_id in sorted({int(m) for m in re.findall(rb'href="/runs/(\d+)/"', page)}):
        status, _, body = portal.get(f"/api/runs/{run_id}/state")
        if status != 200:
            continue
        for step in json.loads(body)["steps"] or []:
            for artifact in step["artifacts"]:
                if artifact["key"] == key:
                    return run_id, artifact
    return None


def _rendition(portal: Portal, key: str, viewer: str | None = None) -> dict | None:
    found = _artifact(portal, key)
    if found is None:
        return None
    for rendition in found[1]["renditions"]:
        if rendition["status"] in ("ready", "failed") and (viewer is None or rendition["viewer"] == viewer):
            return rendition
    return None


def test_upload_appears_in_portal_and_renders_and_runs_a_recipe(deployment, minio):
    d = deployment
    d.wait(lambda: http_status(f"http://127.0.0.1:{d.web_port}/readyz") == 200, START_S, "/readyz: 200")
    key = f"smoke/run-{d.tag}/train/metrics.csv"
    put(minio, d.bucket, key, CSV, content_type="text/csv")
    portal = Portal(d.web_port)
    portal.login("smoke", d.password)
    # Through the image's consumer: the run and the object show in the logged-in portal.
    run_id, artifact = d.wait(lambda: _artifact(portal, key), WORK_S, "the upload to appear in the portal")
    status, _, page = portal.get(f"/runs/{run_id}/")
    assert status == 200 and b"metrics.csv" in page
    # Through the image's render worker: the preview is made, ready.
    rendition = d.wait(lambda: _rendition(portal, key), WORK_S, "the preview to be rendered")
    assert rendition["status"] == "ready", rendition
    # Through the image's sandbox worker: a recipe posted to the API runs on the object.
    status, _, body = portal.post(
        "/api/recipes", body={"name": f"smoke-{d.tag}", "source": RECIPE, "kinds": ["table"]}
    )
    assert status == 201, body
    recipe_id = json.loads(body)["id"]
    status, _, body = portal.post(
        f"/api/recipes/{recipe_id}/run", body={"run": run_id, "artifact": artifact["id"]}
    )
    assert status == 200 and json.loads(body)["queued"], body
    output = d.wait(lambda: _rendition(portal, key, viewer="recipe"), WORK_S, "the recipe's output")
    assert output["status"] == "ready", output


def test_html_report_is_served_by_the_webapp_role_through_the_portal(deployment, minio):
    """The web-app role has no database or store of its own: the document it serves
    comes from the web role (/internal/webapp/<token>), as in the NetworkPolicy."""
    d = deployment
    d.wait(lambda: http_status(f"http://127.0.0.1:{d.web_port}/readyz") == 200, START_S, "/readyz: 200")
    key = f"smoke/run-{d.tag}/report/report.html"
    marker = f"smoke report {d.tag}"
    put(minio, d.bucket, key, f"<h1>{marker}</h1>".encode(), content_type="text/html")
    portal = Portal(d.web_port)
    portal.login("smoke", d.password)
    run_id, artifact = d.wait(lambda: _artifact(portal, key), WORK_S, "the report to appear in the portal")
    rendition = d.wait(lambda: _rendition(portal, key, viewer="web_app"), WORK_S, "the report's rendition")
    assert rendition["status"] == "ready", rendition
    status, _, body = portal.get(
        f"/runs/{run_id}/artifacts/{artifact['id']}/renditions/{rendition['id']}/app-url"
    )
    assert status == 200, body
    link = urlsplit(json.loads(body)["url"])
    assert link.port == d.webapp_port, link
    with urllib.request.urlopen(f"http://127.0.0.1:{d.webapp_port}{link.path}", timeout=30) as resp:
        assert resp.status == 200
        assert marker.encode() in resp.read()


def test_backfill_imports_the_bucket(deployment, minio):
    d = deployment
    key = f"smoke/run-backfill-{d.tag}/step/notes.txt"
    put(minio, d.bucket, key, b"imported by backfill")
    out = d.run_once("backfill", d.bucket)
    assert d.bucket in out.stdout + out.stderr


def test_every_role_stops_on_sigterm(deployment):
    """What a rolling update does: each role ends by itself on SIGTERM, exit code 0
    (the consumer's graceful stop, Celery's warm shutdown, daphne's), not by SIGKILL."""
    d = deployment
    codes = {role: d.stop(role) for role in ROLES}
    assert codes == dict.fromkeys(ROLES, 0), f"{codes}\n{d.logs()}"
