"""KFP metadata references and Parquet datasets on the real path (issue 10, item 5):
MinIO upload → Kafka → consumer → Celery worker → renditions, kinds and pages.

A ``roc.csv`` written beside a step's ``.tgz`` outputs and named by its
``mlpipeline-ui-metadata`` as ``roc`` is a ROC curve, not a table, whether it
arrives before or after the metadata file; each side shows the other.
"""

import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
from django.urls import reverse

from runs.models import Artifact, ArtifactReference
from tests.helpers import put, wait_for
from tests.runs.portal_helpers import user_with_grant
from tests.runs.rendering import files
from tests.runs.test_renditions_live import rendered

WF = "flowers-pipeline-r8q2m"
DAY = "2026/11/29"
POD = f"{WF}-2214436810"


def key(name: str, pod: str = POD) -> str:
    return f"artifacts/{WF}/{DAY}/{pod}/{name}"


ROC_NO_HEADER = "".join(f"{x / 10:.1f},{min(1.0, (x / 10) ** 0.5):.3f},{1 - x / 10:.1f}\n" for x in range(11))
# Labels in the order the metadata declares, which is not the order the rows come in.
CM_LABELS = ["bird", "dog", "cat"]


def metadata(bucket: str) -> bytes:
    doc = {
        "version": 1,
        "outputs": [
            {
                "type": "roc",
                "format": "csv",
                "schema": [{"name": "fpr"}, {"name": "tpr"}, {"name": "thresholds"}],
                "source": f"minio://{bucket}/{key('roc.csv')}",
            },
            {
                "type": "confusion_matrix",
                "format": "csv",
                "schema": [{"name": "target"}, {"name": "predicted"}, {"name": "count"}],
                "labels": CM_LABELS,
                "source": f"minio://{bucket}/{key('confusion.csv')}",
            },
        ],
    }
    return files.tgz({"mlpipeline-ui-metadata.json": json.dumps(doc).encode()})


def artifact(bucket: str, k: str) -> Artifact | None:
    return Artifact.objects.filter(bucket__name=bucket, key=k).first()


def kind_is(bucket: str, k: str, kind: str):
    found = artifact(bucket, k)
    return found if found is not None and found.kind == kind else None


def test_a_referenced_file_takes_the_referenced_kind_whichever_arrives_first(
    minio, live_bucket, running_consumer, celery_worker_process, client, django_user_model
):
    b = live_bucket.name
    # The ROC CSV first: a plain table, as its name says (no header names a chart).
    put(minio, b, key("roc.csv"), ROC_NO_HEADER.encode(), "text/csv")
    (before,) = rendered(b, key("roc.csv"))
    assert (artifact(b, key("roc.csv")).kind, before.viewer) == ("table", "table")

    put(minio, b, key("mlpipeline-ui-metadata.tgz", pod=f"{WF}-2214436811"), metadata(b))
    meta_key = key("mlpipeline-ui-metadata.tgz", pod=f"{WF}-2214436811")
    wait_for(lambda: kind_is(b, key("roc.csv"), "roc"), timeout=60, what="roc.csv to become a ROC curve")
    (roc,) = wait_for(
        lambda: (rows := rendered(b, key("roc.csv"))) and rows[0].viewer == "roc" and rows,
        timeout=60,
        what="roc.csv rendered as a ROC curve",
    )
    assert roc.status == "ready" and roc.payload["points"] == 11
    assert ArtifactReference.objects.filter(key=key("roc.csv"), kind="roc", same_run=True).count() == 1

    # The confusion matrix CSV arrives after the metadata that names it: it takes the kind at
    # once, with the metadata's label order, and the metadata's output is rendered again.
    outs = rendered(b, meta_key, count=2)
    assert [(o.viewer, o.status) for o in outs] == [("roc", "ready"), ("confusion_matrix", "failed")]
    assert "not available" in outs[1].error
    put(minio, b, key("confusion.csv"), files.CONFUSION_CSV.encode(), "text/csv")
    wait_for(lambda: kind_is(b, key("confusion.csv"), "confusion_matrix"), timeout=60, what="kind")
    (cm,) = wait_for(
        lambda: (rows := rendered(b, key("confusion.csv"))) and rows[0].viewer == "confusion_matrix" and rows,
        timeout=60,
        what="confusion.csv rendered as a confusion matrix",
    )
    assert cm.status == "ready" and cm.payload["labels"] == CM_LABELS
    outs = wait_for(
        lambda: (rows := rendered(b, meta_key, count=2)) and rows[1].status == "ready" and rows,
        timeout=60,
        what="the metadata's confusion matrix once its source exists",
    )
    assert outs[1].payload["labels"] == CM_LABELS

    # Both sides show the reference, with links.
    reader = user_with_grant(django_user_model, "reader", live_bucket)
    client.force_login(reader)
    roc_artifact, meta_artifact = artifact(b, key("roc.csv")), artifact(b, meta_key)
    page = client.get(reverse("runs:artifact", args=[roc_artifact.run_id, roc_artifact.pk])).content.decode()
    meta_url = reverse("runs:artifact", args=[meta_artifact.run_id, meta_artifact.pk])
    assert "Referenced by" in page and f'href="{meta_url}"' in page and "as ROC curve" in page
    page = client.get(
        reverse("runs:artifact", args=[meta_artifact.run_id, meta_artifact.pk])
    ).content.decode()
    roc_url = reverse("runs:artifact", args=[roc_artifact.run_id, roc_artifact.pk])
    assert "References:" in page and f'href="{roc_url}"' in page and "Confusion matrix:" in page
    # The run page lists it as a ROC curve.
    run_page = client.get(reverse("runs:detail", args=[roc_artifact.run_id])).content.decode()
    row = run_page[run_page.index(f'id="artifact-{roc_artifact.pk}"') :]
    assert '<span class="kind" data-f="kind">roc</span>' in row[:2000]


def parquet_bytes(rows: int, *, row_group_size: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(
        pa.table(
            {
                "sample": pa.array(range(rows), pa.int32()),
                "label": pa.array([["cat", "dog", "bird"][i % 3] for i in range(rows)]),
                "score": pa.array([(i * 7919 % 1000) / 1000 for i in range(rows)], pa.float32()),
                "when": pa.array([1_764_000_000_000 + i for i in range(rows)], pa.timestamp("ms")),
            }
        ),
        buf,
        row_group_size=row_group_size,
    )
    return buf.getvalue()


def test_parquet_datasets_are_paged_sorted_tables_with_their_schema(
    minio, live_bucket, running_consumer, celery_worker_process, client, django_user_model
):
    b = live_bucket.name
    run = "v2/artifacts/flowers/6a2f1c7e-95b2-4bb0-9a86-3b3f5c3b1f10"
    v2 = f"{run}/prepare/0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d"
    named = f"{v2}/train.parquet"
    bare = f"{v2}/output_dataset"  # KFP v2 Dataset: no extension, Parquet by its magic bytes
    put(minio, b, named, parquet_bytes(1000, row_group_size=300))
    put(minio, b, bare, parquet_bytes(20, row_group_size=10))
    put(minio, b, f"{v2}/broken.parquet", parquet_bytes(1000, row_group_size=300)[:-100])

    (table,) = rendered(b, named)
    p = table.payload
    assert (table.viewer, table.status, p["format"], p["row_count"], p["row_groups"]) == (
        "table",
        "ready",
        "parquet",
        1000,
        4,
    )
    assert artifact(b, named).kind == "parquet"
    assert [f["type"] for f in p["schema"]] == ["int32", "string", "float", "timestamp[ms]"]
    (bare_table,) = rendered(b, bare)
    assert bare_table.viewer == "table" and bare_table.payload["row_count"] == 20
    assert artifact(b, bare).kind == "parquet"  # lists say what the first bytes said
    (broken,) = rendered(b, f"{v2}/broken.parquet")
    assert broken.status == "failed" and "truncated or damaged" in broken.error

    reader = user_with_grant(django_user_model, "reader", live_bucket)
    client.force_login(reader)
    art = artifact(b, named)
    url = reverse("viewers:table_rows", args=[art.run_id, art.pk, table.pk])
    page = client.get(url, {"start": 590, "count": 20}).json()  # across the 2nd and 3rd row groups
    assert [r[0] for r in page["rows"]] == [str(i) for i in range(590, 610)]
    # Sorting: built in the worker, then read back page by page, either way.
    answer = wait_for(
        lambda: (r := client.get(url, {"start": 0, "count": 5, "sort": 2}).json()) and "rows" in r and r,
        timeout=60,
        what="sorted copy of the Parquet table",
    )
    scores = [float(r[2]) for r in answer["rows"]]
    assert scores == sorted(scores)
    top = client.get(url, {"start": 0, "count": 5, "sort": 2, "desc": 1}).json()
    assert float(top["rows"][0][2]) >= scores[-1]
    detail = client.get(reverse("runs:artifact", args=[art.run_id, art.pk])).content.decode()
    assert "Schema (4 columns)" in detail and "timestamp[ms]" in detail


def test_references_into_runs_a_reader_may_not_see_show_no_names_and_change_no_kind(
    transactional_db, minio, unique_name, client, django_user_model
):
    """A metadata file of team A names a file of the HR bucket and one of another team-A run:
    neither file changes kind (only the file's own run may say what it is), and each reader
    sees only the names of runs they may see, on both sides."""
    from runs.services.buckets import bucket_register
    from runs.services.references import references_record
    from tests.runs.portal_helpers import ingest

    team, hr = (bucket_register(name=unique_name(p)) for p in ("team", "hr"))
    try:
        ingest(team, "run-a/eval/mlpipeline-ui-metadata.json", "run-b/eval/roc.csv")
        ingest(hr, "private/salaries/roc.csv")
        meta = artifact(team.name, "run-a/eval/mlpipeline-ui-metadata.json")
        targets = references_record(
            artifact_id=meta.pk,
            etag=meta.etag,
            referred=[
                (0, f"minio://{hr.name}/private/salaries/roc.csv", {"type": "roc"}),
                (1, f"minio://{team.name}/run-b/eval/roc.csv", {"type": "roc"}),
                (2, "minio://not-registered/x.csv", {"type": "roc"}),
            ],
            fetched={},
        )
        assert len(targets) == 2
        assert not ArtifactReference.objects.filter(same_run=True).exists()
        assert {
            artifact(team.name, "run-b/eval/roc.csv").kind,
            artifact(hr.name, "private/salaries/roc.csv").kind,
        } == {"table"}

        def page(user, art) -> str:
            client.force_login(user)
            return client.get(reverse("runs:artifact", args=[art.run_id, art.pk])).content.decode()

        narrow = user_with_grant(django_user_model, "narrow", team, key_prefix="run-a")
        shown = page(narrow, meta)
        assert shown.count("a file of a run you may not see") == 2
        assert "salaries" not in shown and "run-b" not in shown and hr.name not in shown
        hr_staff = user_with_grant(django_user_model, "hr-staff", hr)
        salaries = artifact(hr.name, "private/salaries/roc.csv")
        assert "Referenced by" not in page(hr_staff, salaries)
        assert "mlpipeline-ui-metadata" not in page(hr_staff, salaries)
        whole = user_with_grant(django_user_model, "whole", team)
        run_b = artifact(team.name, "run-b/eval/roc.csv")
        shown = page(whole, run_b)
        assert "Referenced by" in shown and "(run run-a)" in shown and "as ROC curve" in shown
        shown = page(whole, meta)
        assert shown.count("a file of a run you may not see") == 1 and "(run run-b)" in shown
    finally:
        for bucket in (team, hr):
            minio.remove_bucket(bucket.name)


def test_references_restyle_plain_files_only_and_a_dropped_reference_gives_the_kind_back(
    transactional_db, minio, unique_name
):
    """A metadata file naming itself, another metadata file or an image changes none of them
    (no reference can turn a metadata file into a table and back, for ever); a CSV named as
    a ROC curve becomes one, and goes back to a table when the metadata stops naming it."""
    from runs.services.buckets import bucket_register
    from runs.services.references import references_record
    from tests.runs.portal_helpers import ingest

    bucket = bucket_register(name=unique_name("team"))
    try:
        keys = [
            "run-a/eval/mlpipeline-ui-metadata.json",
            "run-a/eval/more/mlpipeline-ui-metadata.json",
            "run-a/eval/roc.csv",
            "run-a/eval/cat.png",
        ]
        ingest(bucket, *keys)
        meta = artifact(bucket.name, keys[0])
        uri = f"minio://{bucket.name}/"
        targets = references_record(
            artifact_id=meta.pk,
            etag=meta.etag,
            referred=[(0, uri + keys[0], {"type": "table"}), (1, uri + keys[1], {"type": "table"})]
            + [(2, uri + keys[2], {"type": "roc"}), (3, uri + keys[3], {"type": "table"})],
            fetched={},
        )
        assert len(targets) == 3  # itself is not a reference
        assert ArtifactReference.objects.filter(source=meta).count() == 3
        kinds_now = {k: artifact(bucket.name, k).kind for k in keys}
        assert kinds_now == {
            keys[0]: "kfp_ui_metadata",
            keys[1]: "kfp_ui_metadata",
            keys[2]: "roc",
            keys[3]: "image",
        }
        # Recorded again unchanged: nothing to render again.
        again = [(2, uri + keys[2], {"type": "roc"}), (1, uri + keys[1], {"type": "table"})]
        again.append((3, uri + keys[3], {"type": "table"}))
        assert references_record(artifact_id=meta.pk, etag=meta.etag, referred=again, fetched={}) == []
        # The metadata stops naming roc.csv: it is a table again.
        references_record(artifact_id=meta.pk, etag=meta.etag, referred=again[1:], fetched={})
        assert artifact(bucket.name, keys[2]).kind == "table"
    finally:
        minio.remove_bucket(bucket.name)
