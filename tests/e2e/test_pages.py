"""The runs list and run page in Chromium, with the worst names real pipelines
produce (120-character run names without spaces, long KFP keys, namespaces and
bucket names) and six metric columns.

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
from tests.e2e.conftest import screenshot
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, user_with_grant

pytestmark = pytest.mark.e2e

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
    "validation_accuracy_top1": 0.913742, "validation_accuracy_top5": 0.990113,
    "validation_loss_weighted_average": 0.304411, "f1_score_macro_average_over_all_classes": 0.871002,
    "precision_at_k_100": 0.950000, "area_under_roc_curve_one_vs_rest": 0.987654,
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
                payload = {"metrics": [{"name": n, "value": v + i / 1000, "format": "RAW",
                                        "display": f"{v + i / 1000:.6g}"} for n, v in METRICS.items()]}
                Rendition.objects.create(artifact=a, etag=a.etag, viewer="metrics", status="ready",
                                         payload=payload)
            elif what == "progress":
                Rendition.objects.create(
                    artifact=a, etag=a.etag, viewer="progress", status="ready",
                    payload={"percent": 40.0 + i, "current": 4, "total": 10,
                             "message": "epoch-4/10-step-4000/10000-learning_rate=0.000125-"
                                        "loss=0.3044110000000000000-accuracy=0.913742"})
            else:
                Rendition.objects.create(
                    artifact=a, etag=a.etag, viewer="table", status="failed",
                    error="The CSV could not be read: row 1 has 121 fields, the header 120: "
                          + "field_" * 30)
    Run.objects.filter(bucket=bucket).update(status="succeeded")
    user_with_grant(django_user_model, "viewer", bucket)
    return Run.objects.filter(bucket=bucket).order_by("pk")


def log_in(page, server):
    page.goto(server.url + "/accounts/login/")
    page.fill("#id_username", "viewer")
    page.fill("#id_password", "pw-viewer")
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/")


def normalised(html: str) -> str:
    """Markup without the whitespace between tags and with progress values as numbers
    (the server writes 41.0 from the database, the script 41 from JSON)."""
    html = re.sub(r">\s+<", "><", html.strip())
    return re.sub(r'value="(\d+)\.0"', r'value="\1"', html)


def test_rows_built_live_are_the_rows_the_server_renders(crowded_runs, live_server_daphne, browser_page):
    from streaming.broadcast import broadcast_runs

    page, server = browser_page, live_server_daphne
    log_in(page, server)
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
