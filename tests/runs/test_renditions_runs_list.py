"""Progress and metrics for the runs list, read from current, ready renditions."""

from django.contrib.auth.models import AnonymousUser

from runs.models import Artifact, Rendition
from runs.selectors import runs_visible_to
from runs.selectors_viewers import metric_names, run_progress_and_metrics, runs_order_by_metric
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant


def rendition(key, viewer, payload, *, status="ready", etag=None):
    a = Artifact.objects.get(key=key)
    return Rendition.objects.create(artifact=a, etag=a.etag if etag is None else etag, viewer=viewer,
                                    status=status, payload=payload)


def metrics(**values):
    return {"metrics": [{"name": k, "value": v, "format": "RAW", "display": f"{v:.6g}"}
                        for k, v in values.items()]}


def test_progress_and_metrics_per_run_and_sorting(db, django_user_model):
    bucket = BucketFactory()
    ingest(bucket, "a/train/progress.json", "a/eval/mlpipeline-metrics.tgz", "b/eval/mlpipeline-metrics.tgz",
           "c/eval/mlpipeline-metrics.tgz", "c/train/progress.json")
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
