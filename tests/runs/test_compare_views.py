"""The compare page as a user sees it: validation, access, sections, re-pairing, query count.

Renditions are made here from the renderers' own parse functions (no worker): the page
only reads renditions' payloads, which is what these tests are about. The merged table's
rows (which read objects) are covered with the real stack in tests/e2e/test_compare.py.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from runs.models import Artifact, Rendition
from runs.rendering import confusion_matrix, metrics, roc
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of, user_with_grant

pytestmark = pytest.mark.django_db


def metrics_payload(accuracy: float, loss: float, epochs: int = 10) -> dict:
    import json

    items = [("accuracy", accuracy), ("loss", loss), ("epochs", epochs)]
    text = json.dumps({"metrics": [{"name": n, "numberValue": v} for n, v in items]})
    return metrics.parse(text)


def roc_payload(shift: float) -> dict:
    lines = ["fpr,tpr,thresholds"] + [
        f"{i / 20},{min(1.0, (i / 20) ** shift)},{1 - i / 20}" for i in range(21)
    ]
    return roc.curve("\n".join(lines))


def cm_payload(counts: dict) -> dict:
    return confusion_matrix.matrix("\n".join(f"{t},{p},{n}" for (t, p), n in counts.items()))


def rendition(artifact: Artifact, viewer: str, payload: dict, *, status="ready", error="", position=0):
    return Rendition.objects.create(
        artifact=artifact,
        etag=artifact.etag,
        viewer=viewer,
        payload=payload,
        status=status,
        error=error,
        position=position,
        title="",
    )


@pytest.fixture
def bucket():
    return BucketFactory(name="cmp-bucket")


@pytest.fixture
def three_runs(bucket):
    runs = []
    for i, (acc, loss, shift) in enumerate([(0.91, 0.30, 0.5), (0.95, 0.20, 0.4), (0.90, 0.35, 0.7)]):
        name = f"exp-{i}"
        ingest(
            bucket,
            f"{name}/train/metrics.json",
            f"{name}/evaluate/roc.csv",
            f"{name}/evaluate/confusion.csv",
            f"{name}/train/main.log",
            seconds=i * 10,
        )
        run = run_of(bucket, name)
        arts = {a.name: a for a in run.artifacts.all()}
        rendition(arts["metrics.json"], "metrics", metrics_payload(acc, loss))
        rendition(arts["roc.csv"], "roc", roc_payload(shift))
        rendition(
            arts["confusion.csv"],
            "confusion_matrix",
            cm_payload({("a", "a"): 5 + i, ("a", "b"): 1, ("b", "b"): 4}),
        )
        if i == 2:
            rendition(arts["main.log"], "text", {}, status="failed", error="The log is not UTF-8 text.")
        runs.append(run)
    return runs


@pytest.fixture
def alice(django_user_model, bucket, client):
    user = user_with_grant(django_user_model, "alice", bucket)
    client.force_login(user)
    return user


def compare(client, *query):
    return client.get(reverse("runs:compare") + "?" + "&".join(query))


def ids(runs) -> str:
    return "runs=" + ",".join(str(r.pk) for r in runs)


def test_three_runs_side_by_side(client, alice, three_runs):
    page = compare(client, ids(three_runs))
    assert page.status_code == 200
    c = page.context["c"]
    assert [r.pk for r in c.runs] == [r.pk for r in three_runs]
    by_name = {m.name: m for m in c.metrics}
    # higher accuracy is better, lower loss is better; the run column order is the URL's
    assert by_name["accuracy"].best == {1} and not by_name["accuracy"].lower_is_better
    assert by_name["loss"].best == {1} and by_name["loss"].lower_is_better
    assert by_name["epochs"].same and by_name["epochs"].best == set()
    assert not by_name["accuracy"].same
    # every run's ROC curve in one chart, with its AUC; and the AUC as a metric row
    (chart,) = c.roc
    assert chart["key"] == "evaluate/roc.csv" and [cv["run"] for cv in chart["curves"]] == [
        r.pk for r in three_runs
    ]
    assert "AUC" in by_name
    # confusion matrices matched, with counts for the difference view
    (cm,) = c.confusion
    assert [d["counts"][0][0] for d in cm.get("data")] == [5, 6, 7]
    html = page.content.decode()
    assert 'data-section="roc"' in html and "★" in html and 'class="only-differences"' in html
    # a failed rendition shows its reason; a run without a kind shows "—"
    assert "The log is not UTF-8 text." in html


def test_the_sections_fragment_for_the_live_refresh(client, alice, three_runs):
    page = compare(client, ids(three_runs), "fragment=sections")
    html = page.content.decode()
    assert page.status_code == 200 and 'data-section="metrics"' in html and "<html" not in html
    assert 'id="compare-seqs"' in html


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "Choose 2 to 50 runs"),
        ("runs=1", "at least 2"),
        ("runs=1,x", "is not a run id"),
        ("runs=1,1", "listed more than once"),
        ("runs=" + ",".join(str(i) for i in range(1, 52)), "At most 50 runs"),
    ],
)
def test_bad_run_lists_get_a_clear_error(client, alice, query, message):
    page = compare(client, query)
    assert page.status_code == 400
    assert message in page.content.decode()


def test_a_run_the_user_may_not_see_answers_like_a_missing_one(client, alice, three_runs, django_user_model):
    other = BucketFactory(name="cmp-other")
    ingest(other, "secret/s/a.txt")
    hidden = run_of(other, "secret")
    invisible = compare(client, f"runs={three_runs[0].pk},{hidden.pk}")
    missing = compare(client, f"runs={three_runs[0].pk},{hidden.pk + 1000}")
    assert invisible.status_code == missing.status_code == 404
    assert invisible.content == missing.content
    # and the merged-table endpoint likewise
    art = hidden.artifacts.get()
    r = rendition(art, "table", {"columns": [{"name": "a", "type": "text"}], "indexed": True})
    mine = three_runs[0].artifacts.first()
    r2 = rendition(mine, "table", {"columns": [{"name": "a", "type": "text"}], "indexed": True}, position=1)
    rows = client.get(
        reverse("runs:compare_table_rows")
        + f"?tables={mine.run_id}:{mine.pk}:{r2.pk},{hidden.pk}:{art.pk}:{r.pk}"
    )
    assert rows.status_code == 404


def test_anonymous_users_are_sent_to_log_in(client, three_runs):
    page = compare(client, ids(three_runs))
    assert page.status_code == 302 and page["Location"].startswith("/accounts/login/")


def test_re_pairing_by_hand_is_kept_in_the_url(client, alice, bucket, three_runs):
    # run 3 wrote its ROC curve under another name: no match until paired by hand
    ingest(bucket, "exp-2/evaluate/roc-final.csv", seconds=100)
    odd = Artifact.objects.get(key="exp-2/evaluate/roc-final.csv")
    rendition(odd, "roc", roc_payload(0.9))
    before = compare(client, ids(three_runs)).context["c"]
    assert {ch["key"] for ch in before.roc} == {"evaluate/roc.csv", "evaluate/roc-final.csv"}
    form = compare(
        client, ids(three_runs), f"repair_artifact={three_runs[2].pk}:{odd.pk}", "repair_to=evaluate/roc.csv"
    )
    assert form.status_code == 302
    after = client.get(form["Location"])
    assert f"pair={three_runs[2].pk}%3A{odd.pk}%3Devaluate%2Froc.csv" in form["Location"]
    c = after.context["c"]
    (chart,) = [ch for ch in c.roc if ch["key"] == "evaluate/roc.csv"]
    # run 3's curve is now the hand-paired one; its own roc.csv becomes "evaluate/roc.csv#2"
    assert chart["curves"][2]["auc"] == roc_payload(0.9)["auc"]
    (displaced,) = [ch for ch in c.roc if ch["key"] == "evaluate/roc.csv#2"]
    assert [cv["run"] for cv in displaced["curves"]] == [three_runs[2].pk]
    assert displaced["curves"][0]["auc"] == roc_payload(0.7)["auc"]
    # undo: an empty target
    undone = compare(
        client,
        ids(three_runs),
        f"pair={three_runs[2].pk}:{odd.pk}=evaluate/roc.csv",
        f"repair_artifact={three_runs[2].pk}:{odd.pk}",
        "repair_to=",
    )
    assert "pair=" not in undone["Location"]


def test_bad_pairs_get_a_clear_error(client, alice, three_runs):
    other_run_artifact = three_runs[1].artifacts.first()
    page = compare(client, ids(three_runs), f"pair={three_runs[0].pk}:{other_run_artifact.pk}=x")
    assert page.status_code == 400 and "has no artifact" in page.content.decode()
    page = compare(client, ids(three_runs), "pair=garbage")
    assert (
        page.status_code == 400
        and "is not &lt;run id&gt;:&lt;artifact id&gt;=&lt;match key&gt;" in page.content.decode()
    )


def _runs_with(bucket, prefix: str, n_runs: int, n_artifacts: int):
    runs = []
    for i in range(n_runs):
        name = f"{prefix}-{i}"
        keys = [f"{name}/train/metrics.json", f"{name}/evaluate/roc.csv"] + [
            f"{name}/step{j % 5}/file{j}.txt" for j in range(n_artifacts)
        ]
        ingest(bucket, *keys, seconds=i)
        run = run_of(bucket, name)
        for a in run.artifacts.all():
            if a.name == "metrics.json":
                rendition(a, "metrics", metrics_payload(0.9 + i / 100, 0.1))
            elif a.name == "roc.csv":
                rendition(a, "roc", roc_payload(0.5))
            else:
                rendition(a, "text", {"text": "hello\n", "start": 0, "end": 6, "size": 6, "truncated": False})
        runs.append(run)
    return runs


def test_queries_do_not_grow_with_the_number_of_artifacts(client, alice, bucket):
    small = _runs_with(bucket, "small", 3, 3)
    large = _runs_with(bucket, "large", 3, 40)
    counts = []
    for runs in (small, large):
        with CaptureQueriesContext(connection) as queries:
            assert compare(client, ids(runs)).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts


def test_the_roc_overlay_uses_the_cut_the_renderer_stored(client, alice, bucket, three_runs, settings):
    lines = ["fpr,tpr,thresholds"] + [f"{i / 999},{(i / 999) ** 0.3},{1 - i / 999}" for i in range(1000)]
    payload = roc.curve("\n".join(lines), max_points=1000, overlay_points=settings.COMPARE_ROC_POINTS)
    assert len(payload["fpr"]) == 1000 and len(payload["overlay"]["fpr"]) == settings.COMPARE_ROC_POINTS
    art = three_runs[0].artifacts.get(name="roc.csv")
    Rendition.objects.filter(artifact=art).update(payload=payload)
    (chart,) = compare(client, ids(three_runs)).context["c"].roc
    assert chart["curves"][0]["fpr"] == payload["overlay"]["fpr"]
    assert chart["curves"][0]["auc"] == payload["auc"]  # the whole curve's


def test_merged_tables_need_the_same_columns(client, alice, three_runs):
    a, b = (run.artifacts.get(name="main.log") for run in three_runs[:2])
    ra = rendition(a, "table", {"columns": [{"name": "x", "type": "text"}], "indexed": True}, position=5)
    rb = rendition(b, "table", {"columns": [{"name": "y", "type": "text"}], "indexed": True}, position=5)
    url = reverse("runs:compare_table_rows")
    rows = client.get(url + f"?tables={a.run_id}:{a.pk}:{ra.pk},{b.run_id}:{b.pk}:{rb.pk}")
    assert rows.status_code == 400 and "same columns" in rows.json()["error"]
    assert client.get(url + "?tables=1:2").status_code == 400
    # a rendition named with another run's id is not found
    assert client.get(url + f"?tables={b.run_id}:{a.pk}:{ra.pk},{b.run_id}:{b.pk}:{rb.pk}").status_code == 404


def test_artifacts_without_a_rendition_are_queued_when_compared(
    client, alice, three_runs, monkeypatch, django_capture_on_commit_callbacks
):
    from types import SimpleNamespace

    from runs.services import renditions

    queued = []
    monkeypatch.setattr(
        renditions, "current_app", SimpleNamespace(send_task=lambda name, **kw: queued.append(kw["kwargs"]))
    )
    logs = sorted(a.pk for r in three_runs[:2] for a in r.artifacts.filter(name="main.log"))
    with django_capture_on_commit_callbacks(execute=True):
        page = compare(client, ids(three_runs))
    assert page.status_code == 200
    # runs 1 and 2 have no rendition of their log (run 3's failed one counts as rendered)
    assert queued == [{"artifact_ids": logs}]
    assert "Waiting for the preview" in page.content.decode()


def test_outputs_of_one_file_are_rows_of_their_own_even_with_one_title(client, alice, bucket, three_runs):
    for i, run in enumerate(three_runs[:2]):
        ingest(bucket, f"exp-{i}/evaluate/mlpipeline-ui-metadata.json", seconds=200 + i)
        meta = run.artifacts.get(name="mlpipeline-ui-metadata.json")
        for position, shift in ((0, 0.5), (1, 0.6)):
            Rendition.objects.create(
                artifact=meta,
                etag=meta.etag,
                viewer="roc",
                payload=roc_payload(shift),
                status="ready",
                position=position,
                title="ROC curve",
            )
    c = compare(client, ids(three_runs)).context["c"]
    keys = sorted(ch["key"] for ch in c.roc if "mlpipeline" in ch["key"])
    assert keys == [
        "evaluate/mlpipeline-ui-metadata.json › ROC curve",
        "evaluate/mlpipeline-ui-metadata.json › ROC curve #1",
    ]
    assert all(len([cv for cv in ch["curves"]]) == 2 for ch in c.roc if "mlpipeline" in ch["key"])
