"""Viewer endpoints and the preview fragment, with renditions made by the real worker.

Access: every endpoint answers 404 to a user whose grants do not cover the
run, as for a run that does not exist. The web-app origin runs as its own
daphne process and is checked over HTTP.
"""

import urllib.error
import urllib.request
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from runs.models import Artifact, Rendition
from tests.helpers import put, wait_for
from tests.runs.portal_helpers import user_with_grant
from tests.runs.rendering import files


def ready(bucket, key, count=1):
    def check():
        a = Artifact.objects.filter(bucket=bucket, key=key).first()
        rows = list(Rendition.objects.filter(artifact=a, etag=a.etag).order_by("position")) if a else []
        return rows if len(rows) == count and all(r.status in ("ready", "failed") for r in rows) else None

    return wait_for(check, timeout=60, what=f"renditions of {key}")


def url(name, r: Rendition):
    return reverse(f"viewers:{name}", args=[r.artifact.run_id, r.artifact_id, r.pk])


@pytest.fixture
def rendered_run(minio, live_bucket, running_consumer, celery_worker_process, settings):
    settings.TABLE_SAMPLE_BYTES = 4096  # the CSV below is indexed, not held in the payload whole
    settings.TABLE_INDEX_CHUNK_BYTES = 8192
    b = live_bucket.name
    rows = b"n,word\n" + b"".join(b"%d,w%d\n" % (i, i) for i in range(3000))
    put(minio, b, "vrun/prep/big.csv", rows, "text/csv")
    put(minio, b, "vrun/prep/photo.jpg", files.jpeg(800, 600), "image/jpeg")
    put(minio, b, "vrun/train/main.log", b"".join(b"line %05d\n" % i for i in range(20000)), "text/plain")
    put(minio, b, "vrun/report/page.html", b"<html><body>hi<script>1</script></body></html>", "text/html")
    put(minio, b, "vrun/report/notes.md", files.MARKDOWN.encode(), "text/markdown")
    out = {
        name: ready(live_bucket, key)[0]
        for name, key in [
            ("table", "vrun/prep/big.csv"),
            ("image", "vrun/prep/photo.jpg"),
            ("text", "vrun/train/main.log"),
            ("web_app", "vrun/report/page.html"),
            ("markdown", "vrun/report/notes.md"),
        ]
    }
    return out


def test_table_pages_sorting_and_access(rendered_run, live_bucket, django_user_model):
    table = rendered_run["table"]
    assert table.payload["row_count"] == 3000 and table.payload["indexed"]
    allowed = Client()
    allowed.force_login(user_with_grant(django_user_model, "ana", live_bucket))
    page = allowed.get(url("table_rows", table), {"start": 2990, "count": 5}).json()
    assert page["rows"] == [[str(i), f"w{i}"] for i in range(2990, 2995)]
    # Sorted pages come from a copy the worker sorts on the first request (202 until then).
    sorted_query = {"start": 0, "count": 3, "sort": 0, "desc": "1"}
    page = wait_for(
        lambda: (r := allowed.get(url("table_rows", table), sorted_query)).status_code == 200 and r.json(),
        what="the sorted copy",
    )
    assert [r[0] for r in page["rows"]] == ["2999", "2998", "2997"]

    stranger = Client()
    stranger.force_login(user_with_grant(django_user_model, "bob", None))
    for name, r in [
        ("table_rows", table),
        ("thumbnail", rendered_run["image"]),
        ("full_image", rendered_run["image"]),
        ("earlier", rendered_run["text"]),
        ("webapp_link", rendered_run["web_app"]),
    ]:
        name = "text_earlier" if name == "earlier" else name
        assert stranger.get(url(name, r)).status_code == 404, name
    assert Client().get(url("table_rows", table)).status_code == 302  # to the login page


def test_thumbnail_full_image_and_log_pages(rendered_run, live_bucket, django_user_model):
    c = Client()
    c.force_login(user_with_grant(django_user_model, "ana", live_bucket))
    image = rendered_run["image"]
    thumb = c.get(url("thumbnail", image))
    assert thumb["Content-Type"] == "image/jpeg" and thumb.content.startswith(b"\xff\xd8")
    full = c.get(url("full_image", image))
    assert (
        full["Content-Security-Policy"] == "sandbox"
        and b"".join(full.streaming_content)[:3] == b"\xff\xd8\xff"
    )
    log = rendered_run["text"]
    earlier = c.get(url("text_earlier", log), {"before": log.payload["start"]}).json()
    assert earlier["end"] == log.payload["start"]
    last_shown = int(log.payload["text"].split()[1])
    assert earlier["text"].endswith(f"line {last_shown - 1:05d}\n")


def test_preview_fragment_shows_each_viewer(rendered_run, live_bucket, django_user_model):
    c = Client()
    c.force_login(user_with_grant(django_user_model, "ana", live_bucket))
    for name, r in rendered_run.items():
        html = c.get(
            reverse("runs:artifact_preview", args=[r.artifact.run_id, r.artifact_id])
        ).content.decode()
        assert f'data-viewer="{name}"' in html, name
    md = rendered_run["markdown"]
    html = c.get(reverse("runs:artifact_preview", args=[md.artifact.run_id, md.artifact_id])).content.decode()
    assert "<h1>Inline Markdown</h1>" in html and "<script>window.pwned" not in html
    app = rendered_run["web_app"]
    html = c.get(
        reverse("runs:artifact_preview", args=[app.artifact.run_id, app.artifact_id])
    ).content.decode()
    assert 'sandbox="allow-scripts"' in html and "allow-same-origin" not in html


def test_webapp_origin_serves_signed_urls_sandboxed_and_expires_them(
    rendered_run, webapp_origin, settings, live_bucket, django_user_model
):
    webapp_server = f"http://127.0.0.1:{webapp_origin(WEBAPP_URL_MAX_AGE_S='3').port}"
    settings.WEBAPP_ORIGIN = webapp_server
    c = Client()
    c.force_login(user_with_grant(django_user_model, "ana", live_bucket))
    link = c.get(url("webapp_link", rendered_run["web_app"])).json()["url"]
    assert link.startswith(webapp_server + "/app/")
    with urllib.request.urlopen(link) as resp:
        csp = resp.headers["Content-Security-Policy"]
        assert csp.endswith("; sandbox allow-scripts") and "connect-src 'none'" in csp
        assert resp.headers["Set-Cookie"] is None and resp.headers["X-Content-Type-Options"] == "nosniff"
        assert b"<body>hi<script>1</script>" in resp.read()
    for bad in (link[:-5] + "xxxx/", webapp_server + "/app/nope/", webapp_server + "/"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad)
        assert err.value.code in (403, 404)
    # A link signed 10 s ago (the clock of the signer moved back, not the test waiting);
    # the server was started with WEBAPP_URL_MAX_AGE_S=3.
    import django.core.signing

    real_time = django.core.signing.time.time
    with mock.patch.object(django.core.signing.time, "time", lambda: real_time() - 10):
        aged = c.get(url("webapp_link", rendered_run["web_app"])).json()["url"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(aged)
    assert err.value.code == 403 and b"expired" in err.value.read()
    assert rendered_run["web_app"].payload["bytes"] == len(b"<html><body>hi<script>1</script></body></html>")


def test_portal_hands_webapp_documents_only_for_valid_tokens_and_never_as_a_page(
    rendered_run, live_bucket, django_user_model, tmp_path
):
    """GET /internal/webapp/<token> on the portal (vizsite/internal.py), over real HTTP."""
    from tests.conftest import PortalServer

    portal = PortalServer(tmp_path / "portal.log", WEBAPP_URL_MAX_AGE_S="30").start()
    c = Client()
    c.force_login(user_with_grant(django_user_model, "ana", live_bucket))
    link = c.get(url("webapp_link", rendered_run["web_app"])).json()["url"]
    token = link.rstrip("/").rsplit("/", 1)[1]
    import django.core.signing

    real_time = django.core.signing.time.time
    with mock.patch.object(django.core.signing.time, "time", lambda: real_time() - 120):
        aged = c.get(url("webapp_link", rendered_run["web_app"])).json()["url"].rstrip("/").rsplit("/", 1)[1]
    try:
        # A browser can send this request too: cookies are neither read nor set, and the
        # untrusted HTML is an attachment the browser may not sniff or run as the portal.
        request = urllib.request.Request(
            f"{portal.url}/internal/webapp/{token}", headers={"Cookie": "sessionid=whatever"}
        )
        with urllib.request.urlopen(request) as resp:
            assert resp.read() == b"<html><body>hi<script>1</script></body></html>"
            assert resp.headers["Content-Type"] == "application/octet-stream"
            assert resp.headers["Content-Disposition"] == "attachment"
            assert resp.headers["X-Pipelens-Content-Type"] == "text/html; charset=utf-8"
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert "sandbox" in resp.headers["Content-Security-Policy"].split("; ")
            assert resp.headers["Set-Cookie"] is None
        answers = set()
        for bad in (token[:-4] + "xxxx", "nope", aged, token + "/", token + "/../x"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"{portal.url}/internal/webapp/{bad}")
            answers.add((err.value.code, err.value.read(), err.value.headers["Set-Cookie"]))
        post = urllib.request.Request(f"{portal.url}/internal/webapp/{token}", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(post)
        answers.add((err.value.code, err.value.read(), err.value.headers["Set-Cookie"]))
        assert answers == {(404, b"Not found.", None)}  # the same answer, whatever was wrong
    finally:
        portal.stop()


def test_webapp_origin_says_so_when_the_portal_is_down_or_silent(webapp_origin):
    import socket

    # Down: a port nothing listens on.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = webapp_origin(portal_url=f"http://127.0.0.1:{closed}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{down.port}/app/some-token/")
    assert err.value.code == 502
    body = err.value.read()
    assert b"The portal could not be reached" in body and b"some-token" not in body
    assert "sandbox allow-scripts" in err.value.headers["Content-Security-Policy"]
    # Silent: accepts the connection, never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        slow = webapp_origin(
            portal_url=f"http://127.0.0.1:{silent.getsockname()[1]}", WEBAPP_PORTAL_TIMEOUT_S="1"
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{slow.port}/app/some-token/", timeout=60)
        assert err.value.code == 504 and b"did not answer in time" in err.value.read()


def test_webapp_origin_refuses_a_portal_answer_past_its_bound_or_not_a_document(webapp_origin):
    """A misbehaving peer where the portal should be: more than TEXT_MAX_BYTES, or bytes
    without the document type the portal sends, end as a 502 page, never as the document."""
    import http.server
    import threading

    class Peer(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<p>" + b"x" * 5000
            self.send_response(200)
            if self.path.endswith("/typed"):
                self.send_header("X-Pipelens-Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Peer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        app = webapp_origin(portal_url=f"http://127.0.0.1:{server.server_port}", TEXT_MAX_BYTES="1000")
        for token, sentence in (("typed", b"larger than TEXT_MAX_BYTES"), ("plain", b"not a document")):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(f"http://127.0.0.1:{app.port}/app/{token}/")
            assert err.value.code == 502 and sentence in err.value.read(), token
    finally:
        server.shutdown()
        server.server_close()
