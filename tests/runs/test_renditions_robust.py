"""Every render failure ends as a failed rendition with a reason (issue 8, finding 3).

The renderer is replaced here to produce what no parser should let through
any more (NaN in a payload, NUL characters) or to fail the ways a hostile
file makes it fail (MemoryError, RecursionError). The real worker path is in
tests/runs/test_security_live.py.
"""

import pytest

from runs.models import Artifact, Rendition
from runs.rendering.base import Output
from runs.services import renditions
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest


@pytest.fixture
def artifact(db):
    bucket = BucketFactory()
    ingest(bucket, "r/s/data.csv")
    return Artifact.objects.get(bucket=bucket)


def render_with(monkeypatch, artifact, renderer):
    monkeypatch.setattr(renditions, "render_artifact", lambda source, kind, ctx, **_options: renderer())
    status = renditions.rendition_render(artifact_id=artifact.pk, etag=artifact.etag)
    return status, list(Rendition.objects.filter(artifact=artifact).order_by("position"))


def test_a_non_finite_number_in_a_payload_is_a_failed_rendition(monkeypatch, artifact):
    status, (row,) = render_with(
        monkeypatch, artifact, lambda: [Output(viewer="roc", title="ROC", payload={"auc": float("nan")})]
    )
    assert status == "failed" and row.status == "failed"
    assert "not finite" in row.error


def test_nul_characters_are_replaced_not_refused(monkeypatch, artifact):
    status, (row,) = render_with(
        monkeypatch,
        artifact,
        lambda: [
            Output(viewer="metrics", title="a\x00b", payload={"metrics": [{"name": "x\x00y", "value": 1.0}]})
        ],
    )
    assert status == "ready" and row.title == "a\ufffdb"
    assert row.payload["metrics"][0]["name"] == "x\ufffdy"


def test_one_bad_output_does_not_hide_the_others(monkeypatch, artifact):
    status, rows = render_with(
        monkeypatch,
        artifact,
        lambda: [
            Output(viewer="markdown", title="ok", payload={"html": "<p>ok</p>"}),
            Output(viewer="roc", title="bad", payload={"fpr": [float("inf")]}),
        ],
    )
    assert status == "ready" and [r.status for r in rows] == ["ready", "failed"]


def test_running_out_of_memory_is_a_reason(monkeypatch, artifact, settings):
    settings.RENDER_WORKER_MAX_MEMORY_MB = 777

    def boom():
        raise MemoryError

    status, (row,) = render_with(monkeypatch, artifact, boom)
    assert status == "failed" and "more memory than a render worker may use (777 MiB" in row.error


def test_recursion_is_a_reason(monkeypatch, artifact):
    def deep():
        raise RecursionError("maximum recursion depth exceeded")

    status, (row,) = render_with(monkeypatch, artifact, deep)
    assert status == "failed" and "nested too deeply" in row.error
