"""Content-Security-Policy: web-app documents may not reach the network; portal pages run only
the portal's own scripts and styles (issue 8, finding 2; docs/security.md).

The browser side (every viewer still works under the portal's policy, and
Chromium reports no violation) is in tests/e2e/test_viewers.py.
"""

import re

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.urls import reverse

from runs import webapp
from runs.models import Artifact, Rendition
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant


def directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@async_to_sync
async def webapp_request(path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    """One request to the web-app origin's ASGI app, in this process."""
    comm = ApplicationCommunicator(
        webapp.application, {"type": "http", "method": method, "path": path, "headers": []}
    )
    await comm.send_input({"type": "http.request", "body": b""})
    start = await comm.receive_output(5)
    body = await comm.receive_output(5)
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body["body"]


def webapp_get(path: str) -> tuple[int, dict]:
    status, headers, _body = webapp_request(path)
    return status, headers


@pytest.fixture
def portal_for_webapp(live_server, settings):
    """The web-app origin asks the portal for its documents (WEBAPP_PORTAL_URL): a live one."""
    settings.WEBAPP_PORTAL_URL = live_server.url


def test_webapp_documents_may_not_reach_the_network(portal_for_webapp):
    status, headers = webapp_get("/app/not-a-valid-token/")
    assert status == 403
    policy = directives(headers["content-security-policy"])
    assert policy["sandbox"] == ["allow-scripts"]
    assert policy["default-src"] == ["'none'"] and policy["connect-src"] == ["'none'"]
    assert policy["img-src"] == ["data:", "blob:"] and policy["form-action"] == ["'none'"]
    assert "'unsafe-inline'" in policy["script-src"]  # self-contained apps still run, sandboxed
    # Scripts from the web-app origin itself (the vendored Vega files) and from nowhere else.
    assert "'self'" in policy["script-src"]
    sources = [word for words in policy.values() for word in words]
    assert not [w for w in sources if "://" in w or w.endswith(":") and w not in ("data:", "blob:")]
    assert not [w for w in sources if "*" in w or w in ("http:", "https:", "ws:", "wss:")]


@pytest.mark.django_db
def test_webapp_origin_serves_the_vendored_vega_files_and_nothing_else():
    for name in ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js"):
        status, headers, body = webapp_request(f"/vendor/vega/{name}")
        assert status == 200, name
        assert headers["content-type"] == "text/javascript; charset=utf-8"
        assert headers["x-content-type-options"] == "nosniff"
        assert "max-age=31536000" in headers["cache-control"] and "public" in headers["cache-control"]
        assert headers["cross-origin-resource-policy"] == "cross-origin"  # asked for by opaque origins
        assert body == (webapp._VENDOR_DIR / name).read_bytes() and body.startswith(b"!function(")
        assert int(headers["content-length"]) == len(body)
    assert webapp_request("/vendor/vega/vega.min.js", method="HEAD")[0] == 200
    assert webapp_request("/vendor/vega/vega.min.js", method="POST")[0] == 404
    for path in (
        "/vendor/../settings",
        "/vendor/vega/../../settings/base.py",
        "/vendor/vega/%2e%2e/vega.LICENSE",
        "/vendor/vega/vega.LICENSE",
        "/vendor/vega/vega.min.js.map",
        "/vendor/vega/",
        "/vendor/vega",
        "/vendor/vega//vega.min.js",
        "/vendor/vega/vega-core.min.js",
        "/vendor/uPlot.iife.min.js",
        "/static/runs/vendor/vega/vega.min.js",
        "/runs/static/runs/vendor/vega/vega.min.js",
        "/vendor/vega/VEGA.MIN.JS",
        "/etc/passwd",
        "/",
    ):
        status, headers, body = webapp_request(path)
        assert status == 404 and body == b"Not found.", path
        assert headers["cache-control"] == "private, no-store", path


def test_webapp_origin_answers_its_probe_without_the_database():
    # No django_db mark: a database query here would raise, so the probe is proven
    # to read nothing (pods stay up while the database is away, docs/deploy.md).
    status, headers, body = webapp_request("/healthz")
    assert (status, body) == (200, b'{"ok": true}')
    assert headers["content-type"] == "application/json"
    assert headers["cache-control"] == "private, no-store"
    assert "sandbox allow-scripts" in headers["content-security-policy"]
    assert webapp_request("/healthz", method="POST")[0] == 404
    assert webapp_request("/healthz/")[0] == 404


def test_webapp_policy_is_a_setting_and_keeps_the_sandbox(portal_for_webapp, settings):
    settings.WEBAPP_CSP = "default-src 'none'; script-src https://cdn.example.org 'unsafe-inline'"
    _status, headers = webapp_get("/app/x/")
    policy = directives(headers["content-security-policy"])
    assert policy["script-src"] == ["https://cdn.example.org", "'unsafe-inline'"]
    assert policy["sandbox"] == ["allow-scripts"]


@pytest.mark.django_db
def test_portal_pages_have_a_strict_policy(client, settings):
    settings.WEBAPP_ORIGIN = "http://apps.example.test:8001"
    response = client.get(reverse("login"))
    policy = directives(response["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["form-action"] == ["'self'"]
    assert policy["frame-src"] == ["http://apps.example.test:8001"]
    assert policy["img-src"] == ["'self'", "data:"]
    assert set(policy["connect-src"]) == {"'self'", "ws://testserver", "wss://testserver"}


@pytest.mark.django_db
def test_a_request_for_a_disallowed_host_is_refused_with_a_policy(client):
    response = client.get(reverse("login"), HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert directives(response["Content-Security-Policy"])["connect-src"] == ["'self'"]


@pytest.mark.django_db
def test_remote_markdown_images_allowed_means_https_images_allowed(client, settings):
    settings.MARKDOWN_ALLOW_REMOTE_IMAGES = True
    policy = directives(client.get(reverse("login"))["Content-Security-Policy"])
    assert policy["img-src"] == ["'self'", "data:", "https:"]


@pytest.mark.django_db
def test_portal_pages_have_no_inline_scripts_or_styles(client, django_user_model):
    """What a strict policy would block: inline <script>, style="" and on*="" attributes."""
    bucket = BucketFactory()
    ingest(bucket, "r/eval/cm.csv", "r/eval/roc.csv", "r/report/app.html", "r/train/tb.json")
    run = run_of(bucket, "r")
    cm, roc, app, tb = (
        Artifact.objects.get(bucket=bucket, key=k)
        for k in ("r/eval/cm.csv", "r/eval/roc.csv", "r/report/app.html", "r/train/tb.json")
    )
    Rendition.objects.create(
        artifact=cm,
        etag=cm.etag,
        viewer="confusion_matrix",
        status="ready",
        payload={
            "labels": ["a", "b"],
            "counts": [[3, 1], [0, 2]],
            "percent": [[75.0, 25.0], [0.0, 100.0]],
            "total": 6,
        },
    )
    Rendition.objects.create(
        artifact=roc,
        etag=roc.etag,
        viewer="roc",
        status="ready",
        payload={"fpr": [0, 1], "tpr": [0, 1], "thresholds": [None, 0], "auc": 0.5, "points": 2},
    )
    Rendition.objects.create(
        artifact=app,
        etag=app.etag,
        viewer="web_app",
        status="ready",
        preview_key="k/app.html",
        payload={"bytes": 10},
    )
    # Stored before the quoting fix: the page quotes the directory itself.
    Rendition.objects.create(
        artifact=tb,
        etag=tb.etag,
        viewer="tensorboard",
        status="ready",
        payload={"logdir": "s3://b/logs; rm -rf ~", "command": "tensorboard --logdir s3://b/logs; rm -rf ~"},
    )
    client.force_login(user_with_grant(django_user_model, "ana", bucket))
    pages = [
        client.get(reverse("runs:detail", args=[run.pk])).content.decode(),
        client.get(reverse("runs:list")).content.decode(),
        client.get(reverse("runs:artifact", args=[run.pk, cm.pk])).content.decode(),
    ]
    for html in pages:
        assert "cm-viewer" in html or "runs" in html
        assert not re.search(r"\sstyle\s*=", html), re.search(r".{80}\sstyle\s*=.{80}", html)
        assert not re.search(r"\son[a-z]+\s*=", html)
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "cm-w15" in pages[0] and "cm-w5" in pages[0]  # 75 % and 25 % shades, as classes
    assert "tensorboard --logdir &#x27;s3://b/logs; rm -rf ~&#x27;" in pages[0]
