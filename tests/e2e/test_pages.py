"""The runs list and run page in Chromium, with the worst names real pipelines
produce (120-character run names without spaces, long KFP keys, namespaces and
bucket names) and six metric columns.

- Pages that fit: at desktop (1280x800) and phone (375x740) width nothing
  scrolls sideways and the key controls are on screen.
- One row markup: a row the page scripts build for a run or artifact that
  arrives live is the row the server renders (both come from the server's
  markup, cloned from a <template>).

No MinIO or Kafka here: the runs are stored through the real ingest service and
their renditions written directly; a real daphne serves them and pushes go
through the real channel layer.
"""

import re

import pytest

from runs.models import Artifact, Rendition, Run
from runs.services.run_metrics import run_metrics_refresh
from tests.e2e.conftest import log_in, screenshot
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, user_with_grant

pytestmark = pytest.mark.e2e

SIZES = {"desktop": (1280, 800), "phone": (375, 740)}

BUCKET = "pipelens-artifacts-computer-vision-research-and-development-eu1"  # 63, S3's maximum
NAMESPACE = "kubeflow-user-computer-vision-research-and-development-team01"
PIPELINE = "image-classification-training-pipeline-with-hyperparameter-search-and-evaluation"
TASK = "evaluate-model-on-held-out-test-set-with-bootstrap-confidence-intervals"
FILES = {
    "metrics": "mlpipeline-metrics-for-the-validation-split-of-all-one-hundred-and-twenty-classes.json",
    "progress": "training-progress-reported-by-the-trainer-every-one-hundred-steps-of-every-epoch.json",
    "failed": "confusion_matrix_for_the_validation_split_normalised_by_row_and_sorted_by_support.csv",
}
METRICS = {
    "validation_accuracy_top1": 0.913742,
    "validation_accuracy_top5": 0.990113,
    "validation_loss_weighted_average": 0.304411,
    "f1_score_macro_average_over_all_classes": 0.871002,
    "precision_at_k_100": 0.950000,
    "area_under_roc_curve_one_vs_rest": 0.987654,
}


def run_name(i: int) -> str:
    """120 characters, no spaces, as generated run names are."""
    return (f"{PIPELINE}-run-{i}-2026-11-29t06-00-00z-" + "0123456789abcdef" * 8)[:120]


def key(i: int, name: str) -> str:
    return f"private-artifacts/{NAMESPACE}/v2/artifacts/{PIPELINE}/{run_name(i)}/{TASK}/{name}"


@pytest.fixture
def crowded_runs(transactional_db, django_user_model):
    """Three runs with long everything, each with progress, six metrics and a failed preview."""
    bucket = BucketFactory(name=BUCKET)
    for i in range(3):
        ingest(bucket, *(key(i, name) for name in FILES.values()), seconds=10 * i, size=1234567)
        for what, name in FILES.items():
            a = Artifact.objects.get(bucket=bucket, key=key(i, name))
            if what == "metrics":
                payload = {
                    "metrics": [
                        {"name": n, "value": v + i / 1000, "format": "RAW", "display": f"{v + i / 1000:.6g}"}
                        for n, v in METRICS.items()
                    ]
                }
                Rendition.objects.create(
                    artifact=a, etag=a.etag, viewer="metrics", status="ready", payload=payload
                )
            elif what == "progress":
                Rendition.objects.create(
                    artifact=a,
                    etag=a.etag,
                    viewer="progress",
                    status="ready",
                    payload={
                        "percent": 40.0 + i,
                        "current": 4,
                        "total": 10,
                        "message": "epoch-4/10-step-4000/10000-learning_rate=0.000125-"
                        "loss=0.3044110000000000000-accuracy=0.913742",
                    },
                )
            else:
                Rendition.objects.create(
                    artifact=a,
                    etag=a.etag,
                    viewer="table",
                    status="failed",
                    error="The CSV could not be read: row 1 has 121 fields, the header 120: " + "field_" * 30,
                )
    # The renditions were written directly: the list's metric values follow them as the
    # renditions service would have made them.
    run_metrics_refresh(run_ids=Run.objects.filter(bucket=bucket).values_list("pk", flat=True))
    user_with_grant(django_user_model, "viewer", bucket)
    return Run.objects.filter(bucket=bucket).order_by("pk")


def log_in_viewer(page, server):
    log_in(page, server.url, "viewer", "pw-viewer")


def overflow_report(page) -> dict:
    """Page width against the window's, and what sticks out on the right (for the message)."""
    return page.evaluate("""() => {
        const w = window.innerWidth;
        const out = [];
        for (const el of document.body.querySelectorAll("*")) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > w + 1 && !el.closest(".table-scroll"))
                out.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(r.right)}`);
        }
        return {scrollWidth: document.documentElement.scrollWidth, innerWidth: w,
                sticking_out: out.slice(0, 8)};
    }""")


def assert_no_sideways_scroll(page):
    report = overflow_report(page)
    assert report["scrollWidth"] <= report["innerWidth"], report


def assert_on_screen(page, locator, what: str):
    """Shown, and wholly inside the window horizontally (not cut off or scrolled away)."""
    assert locator.is_visible(), f"{what} is not visible"
    box = locator.bounding_box()
    width = page.evaluate("window.innerWidth")
    assert box["x"] >= 0 and box["x"] + box["width"] <= width + 1, (
        f"{what} is off screen: {box}, window {width}"
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_runs_list_and_run_page_fit_the_window(size, crowded_runs, live_server_daphne, browser_page):
    page, server = browser_page, live_server_daphne
    width, height = SIZES[size]
    page.set_viewport_size({"width": width, "height": height})
    log_in_viewer(page, server)

    # Runs list.
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    assert page.locator("#run-rows tr").count() == 3
    assert page.locator("#runs thead th.metric").count() == len(METRICS)
    assert_no_sideways_scroll(page)
    table = page.evaluate("""() => { const t = document.getElementById("runs");
        return {right: t.getBoundingClientRect().right, scroll: t.parentElement.scrollWidth,
                client: t.parentElement.clientWidth}; }""")
    assert table["right"] <= width and table["scroll"] <= table["client"], (
        f"the table scrolls sideways: {table}"
    )
    for name in ("q", "bucket", "namespace", "status", "date_from", "date_to", "sort"):
        assert_on_screen(page, page.locator(f"form.filters [name={name}]"), f"filter {name}")
    assert_on_screen(page, page.locator("form.filters button[type=submit]"), "Apply")
    assert_on_screen(page, page.locator("#live-status"), "the live indicator")
    first = page.locator("#run-rows tr").first
    assert_on_screen(page, first.locator("a[data-f=name]"), "the run link")
    for th in page.locator("#runs thead th.metric a").all():
        assert_on_screen(page, th, f"metric sort link {th.get_attribute('title')}")
    # Cut-off text keeps its whole value in a title; the run name is never cut.
    assert first.locator("[data-f=pipeline]").get_attribute("title") == PIPELINE
    assert first.locator("[data-f=name]").inner_text().replace("\n", "") == crowded_runs[2].name
    # Every metric value is on screen and whole (not cut by an ellipsis).
    for cell in first.locator("td.metric").all():
        assert_on_screen(page, cell, f"metric {cell.get_attribute('data-metric')}")
        assert cell.inner_text().strip()
        assert cell.evaluate("td => td.scrollWidth <= td.clientWidth"), (
            f"{cell.get_attribute('data-metric')} is cut"
        )
    screenshot(page, f"layout-runs-list-{width}x{height}")

    # Run page.
    first.locator("a[data-f=name]").click()
    run = crowded_runs[2]
    page.wait_for_url(f"{server.url}/runs/{run.pk}/")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    page.locator("li.artifact .progress-viewer").wait_for()
    assert_no_sideways_scroll(page)
    assert_on_screen(page, page.locator("#run-name"), "the run name")
    assert_on_screen(page, page.locator("#live-status"), "the live indicator")
    assert_on_screen(page, page.locator("#steps h2").first, "the step name")
    assert page.locator("li.artifact").count() == len(FILES)
    for row in page.locator("li.artifact").all():
        assert_on_screen(page, row, "an artifact row")
        assert_on_screen(page, row.locator("a.name"), "an artifact link")
        assert_on_screen(page, row.locator("a.download"), "a download link")
    screenshot(page, f"layout-run-page-{width}x{height}")


def normalised(html: str) -> str:
    """Markup without the whitespace between tags and with progress values as numbers
    (the server writes 41.0 from the database, the script 41 from JSON)."""
    html = re.sub(r">\s+<", "><", html.strip())
    return re.sub(r'value="(\d+)\.0"', r'value="\1"', html)


def test_rows_built_live_are_the_rows_the_server_renders(crowded_runs, live_server_daphne, browser_page):
    from streaming.live.broadcast import broadcast_runs

    page, server = browser_page, live_server_daphne
    log_in_viewer(page, server)
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)

    # Runs list: take a server-rendered row away; a push for its run brings it back, built by run_list.js.
    run = crowded_runs[1]
    row = f"#run-{run.pk}"
    served = page.locator(row).evaluate("tr => { const html = tr.outerHTML; tr.remove(); return html; }")
    broadcast_runs(run_ids=[run.pk], wait=True)
    page.locator(row).wait_for(timeout=10_000)
    assert normalised(page.locator(row).evaluate("tr => tr.outerHTML")) == normalised(served)

    # Run page: the same for a whole step, its section and its rows (with their previews).
    page.goto(f"{server.url}/runs/{run.pk}/")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    step = run.steps.get()
    section = f"#step-{step.pk}"
    served = page.locator(section).evaluate("s => { const html = s.outerHTML; s.remove(); return html; }")
    artifacts = list(run.artifacts.values_list("pk", flat=True))
    broadcast_runs(run_ids=[run.pk], artifact_ids=artifacts, wait=True)
    for pk in artifacts:
        page.locator(f"#artifact-{pk} .preview .viewers").wait_for(timeout=10_000)
    built = page.locator(section).evaluate("s => s.outerHTML")
    assert normalised(built) == normalised(served)
    screenshot(page, "rows-built-live-run-page")
