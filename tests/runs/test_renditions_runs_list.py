"""Progress and metrics for the runs list, read from current, ready renditions."""

from django.contrib.auth.models import AnonymousUser

from runs.models import Artifact, Rendition
from runs.selectors.access import runs_visible_to
from runs.selectors.runs_list import metric_names, run_progress_and_metrics, runs_order_by_metric
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant


def rendition(key, viewer, payload, *, status="ready", etag=None):
    a = Artifact.objects.get(key=key)
    return Rendition.objects.create(
        artifact=a, etag=a.etag if etag is None else etag, viewer=viewer, status=status, payload=payload
    )


def metrics(**values):
    return {
        "metrics": [
            {"name": k, "value": v, "format": "RAW", "display": f"{v:.6g}"} for k, v in values.items()
        ]
    }


def test_progress_and_metrics_per_run_and_sorting(db, django_user_model):
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
    visible = runs_visible_to(user=user)
    assert metric_names(runs=visible) == ["accuracy", "loss"]
    ordered = [r.run_key for r in runs_order_by_metric(visible, name="accuracy")]
    assert ordered == ["b", "a", "c"]
    ordered = [r.run_key for r in runs_order_by_metric(visible, name="accuracy", descending=False)]
    assert ordered == ["a", "b", "c"]
    assert metric_names(runs=runs_visible_to(user=AnonymousUser())) == []


def test_runs_list_page_shows_progress_bars_and_sorts_by_a_metric_column(db, client, django_user_model):
    import re

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
