"""Progress and metrics for the runs list: progress from current, ready renditions, metrics
from RunMetric, which the renditions service keeps in step with them (docs/portal.md#metrics)."""

import re

import pytest
from django.contrib.auth.models import AnonymousUser

from runs.models import Artifact, Rendition, RunMetric
from runs.selectors.runs_list import metric_names, run_progress_and_metrics
from runs.services import renditions
from runs.services.run_metrics import run_metrics_backfill, run_metrics_refresh
from tests.factories import BucketFactory, object_event
from tests.helpers import put
from tests.runs.portal_helpers import ingest, run_of, user_with_grant


def rendition(key, viewer, payload, *, status="ready", etag=None):
    """A rendition written directly (as the render path would), then the run's metric values
    refreshed by the service, as the render path does in the same transaction."""
    a = Artifact.objects.get(key=key)
    row = Rendition.objects.create(
        artifact=a, etag=a.etag if etag is None else etag, viewer=viewer, status=status, payload=payload
    )
    run_metrics_refresh(run_ids=[a.run_id])
    return row


def metrics(**values):
    return {
        "metrics": [
            {"name": k, "value": v, "format": "RAW", "display": f"{v:.6g}"} for k, v in values.items()
        ]
    }


def values_of(run):
    return dict(RunMetric.objects.filter(run=run).values_list("name", "display"))


def test_progress_and_metrics_per_run(db, django_user_model):
    bucket = BucketFactory()
    ingest(
        bucket,
        "a/train/progress.json",
        "a/eval/mlpipeline-metrics.tgz",
        "b/eval/mlpipeline-metrics.tgz",
        "c/eval/mlpipeline-metrics.tgz",
        "c/train/progress.json",
    )
    rendition("a/train/progress.json", "progress", {"percent": 40.0, "message": "epoch 4/10"})
    rendition("a/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.91, loss=0.3))
    rendition("b/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.95))
    rendition("c/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.99), status="failed")
    rendition("c/train/progress.json", "progress", {"percent": 90.0}, etag="an-older-version")
    a, b, c = (run_of(bucket, k) for k in "abc")

    seen = run_progress_and_metrics(run_ids=[a.pk, b.pk, c.pk])
    assert seen[a.pk]["progress"] == {"percent": 40.0, "message": "epoch 4/10"}
    assert seen[a.pk]["metrics"]["accuracy"] == {"value": 0.91, "display": "0.91"}
    assert seen[b.pk]["progress"] is None
    assert c.pk not in seen  # failed and superseded renditions do not count

    user = user_with_grant(django_user_model, "ana", bucket)
    assert metric_names(user=user, limit=8) == ["accuracy", "loss"]
    assert metric_names(user=user, limit=1) == ["accuracy"]
    assert metric_names(user=AnonymousUser(), limit=8) == []
    # Names of runs a user may not see are not offered to them.
    other = BucketFactory()
    ingest(other, "z/eval/mlpipeline-metrics.tgz")
    rendition("z/eval/mlpipeline-metrics.tgz", "metrics", metrics(secret_score=1.0))
    assert metric_names(user=user, limit=8) == ["accuracy", "loss"]
    assert user_with_grant(django_user_model, "zed", other) and metric_names(
        user=django_user_model.objects.get(username="zed"), limit=8
    ) == ["secret_score"]


def test_later_artifacts_win_and_the_backfill_agrees(db):
    bucket = BucketFactory()
    ingest(bucket, "a/eval/mlpipeline-metrics.tgz", seconds=0)
    ingest(bucket, "a/test/mlpipeline-metrics.tgz", seconds=10)
    rendition("a/test/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.8, f1=0.7))
    rendition("a/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.6, loss=0.2))
    a = run_of(bucket, "a")
    expected = {"accuracy": "0.8", "f1": "0.7", "loss": "0.2"}  # the later artifact's accuracy
    assert values_of(a) == expected
    RunMetric.objects.all().delete()
    assert run_metrics_backfill() == 3
    assert values_of(a) == expected


def test_overwriting_or_deleting_a_metrics_file_updates_the_list_values(
    db, django_capture_on_commit_callbacks
):
    from runs.services.ingest import ingest_events
    from tests.factories import EventAction

    bucket = BucketFactory()
    ingest(bucket, "a/eval/mlpipeline-metrics.tgz", "a/train/data.csv")
    rendition("a/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.9))
    a = run_of(bucket, "a")
    assert values_of(a) == {"accuracy": "0.9"}

    # A new version: the old one's values stop counting once the batch commits.
    with django_capture_on_commit_callbacks(execute=True):
        ingest_events(
            events=[object_event(bucket.name, "a/eval/mlpipeline-metrics.tgz", seconds=5, etag="v2")]
        )
    assert values_of(a) == {}
    rendition("a/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.95))
    assert values_of(a) == {"accuracy": "0.95"}

    removed = object_event(
        bucket.name, "a/eval/mlpipeline-metrics.tgz", seconds=9, action=EventAction.REMOVED
    )
    with django_capture_on_commit_callbacks(execute=True):
        ingest_events(events=[removed])
    assert values_of(a) == {}


def test_progress_follows_the_latest_progress_file(db, django_capture_on_commit_callbacks):
    from runs.services.ingest import ingest_events
    from tests.factories import EventAction

    bucket = BucketFactory()
    ingest(bucket, "a/prep/progress.json", seconds=0)
    ingest(bucket, "a/train/progress.json", seconds=10)
    rendition("a/train/progress.json", "progress", {"percent": 30.0, "message": "training"})
    rendition("a/prep/progress.json", "progress", {"percent": 100.0, "message": "prepared"})
    a = run_of(bucket, "a")
    assert run_progress_and_metrics(run_ids=[a.pk])[a.pk]["progress"] == {
        "percent": 30.0,
        "message": "training",
    }
    removed = object_event(bucket.name, "a/train/progress.json", seconds=20, action=EventAction.REMOVED)
    with django_capture_on_commit_callbacks(execute=True):
        ingest_events(events=[removed])
    assert run_progress_and_metrics(run_ids=[a.pk])[a.pk]["progress"] == {
        "percent": 100.0,
        "message": "prepared",
    }


@pytest.fixture
def minio_bucket(db, minio, unique_name):
    name = unique_name("metrics")
    minio.make_bucket(name)
    yield BucketFactory(name=name)
    for obj in minio.list_objects(name, recursive=True):
        minio.remove_object(name, obj.object_name)
    minio.remove_bucket(name)


def test_a_real_render_of_a_metrics_file_fills_the_list_values(minio, minio_bucket):
    """Upload to MinIO, ingest, render through the real renditions service."""
    from tests.runs.rendering import files

    key = "r1/eval/mlpipeline-metrics.json"
    result = put(minio, minio_bucket.name, key, files.metrics_json(), "application/json")
    ingest_one = object_event(minio_bucket.name, key, etag=result.etag, size=len(files.metrics_json()))
    from runs.services.ingest import ingest_events

    ingest_events(events=[ingest_one])
    artifact = Artifact.objects.get(bucket=minio_bucket, key=key)
    assert renditions.rendition_render(artifact_id=artifact.pk, etag=artifact.etag) == "ready"
    assert values_of(artifact.run) == {"accuracy-score": "91.37%", "roc-auc-score": "0.95"}

    # Rendered again (its kind or references changed): the values go with the old
    # renditions and come back with the new ones.
    renditions.renditions_rerender(artifact_ids=[artifact.pk])
    assert values_of(artifact.run) == {}
    assert renditions.rendition_render(artifact_id=artifact.pk, etag=artifact.etag) == "ready"
    assert values_of(artifact.run) == {"accuracy-score": "91.37%", "roc-auc-score": "0.95"}


def test_runs_list_page_shows_progress_bars_and_sorts_by_a_metric_column(db, client, django_user_model):
    bucket = BucketFactory()
    ingest(bucket, "a/train/progress.json", "a/eval/mlpipeline-metrics.tgz", "b/eval/mlpipeline-metrics.tgz")
    rendition("a/train/progress.json", "progress", {"percent": 40.0, "message": "epoch 4/10"})
    rendition("a/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.91, loss=0.3))
    rendition("b/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.95))
    client.force_login(user_with_grant(django_user_model, "ana", bucket))

    page = client.get("/").content.decode()
    assert re.findall(r'<th scope="col" class="metric" data-metric="(\w+)"', page) == ["accuracy", "loss"]
    row_a = page[page.index(f'id="run-{run_of(bucket, "a").pk}"') :]
    row_a = row_a[: row_a.index("</tr>")]
    assert '<progress max="100" value="40.0"' in row_a and "40% · epoch 4/10" in row_a
    assert '<td class="metric" data-metric="accuracy" title="0.91">0.91</td>' in row_a
    assert '<td class="metric" data-metric="loss" title="0.3">0.3</td>' in row_a

    def order(query):
        html = client.get("/" + query).content.decode()
        rows = html.split('<template id="run-row-template">')[0]  # not the empty row run_list.js clones
        return [int(i) for i in re.findall(r'<tr id="run-(\d+)"', rows)]

    a, b = run_of(bucket, "a").pk, run_of(bucket, "b").pk
    assert order("?metric=accuracy&order=desc") == [b, a]
    assert order("?metric=accuracy&order=asc") == [a, b]
    assert order("?metric=loss") == [a, b]  # runs without the metric last
    assert client.get("/?metric=accuracy&order=sideways").status_code == 400


def test_run_pushes_carry_progress_and_metrics_for_the_runs_list(db):
    from runs.selectors.run_state import run_summaries

    bucket = BucketFactory()
    ingest(bucket, "a/train/progress.json", "a/eval/mlpipeline-metrics.tgz")
    rendition("a/train/progress.json", "progress", {"percent": 75.0, "message": ""})
    rendition("a/eval/mlpipeline-metrics.tgz", "metrics", metrics(accuracy=0.5))
    a = run_of(bucket, "a")
    summary = run_summaries(run_ids=[a.pk])[a.pk]
    assert summary["progress"] == {"percent": 75.0, "message": ""}
    assert summary["metrics"] == {"accuracy": "0.5"}
