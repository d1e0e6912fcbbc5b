"""Every viewer kind on the real services: MinIO upload → Kafka → consumer → Celery worker → Rendition.

Fixture files are generated here (tests/runs/rendering/files.py) and written
with the official MinIO client; assertions are on what the preview shows.
"""

import json

from PIL import Image

from runs.models import Artifact, Rendition
from runs.storage import preview_prefix
from tests.helpers import put, wait_for
from tests.runs.rendering import files

RUN = "artifacts/flowers-pipeline-x7k2p"
DAY = "2026/11/29"


def v1_key(pod: str, output: str) -> str:
    return f"{RUN}/{DAY}/flowers-pipeline-x7k2p-{pod}/{output}"


def finished(bucket, key, *, count: int | None = None):
    """The artifact's renditions once none is pending or rendering (and all belong to its etag)."""
    artifact = Artifact.objects.filter(bucket__name=bucket, key=key).first()
    if artifact is None:
        return None
    rows = list(Rendition.objects.filter(artifact=artifact, etag=artifact.etag).order_by("position"))
    if not rows or any(r.status in ("pending", "rendering") for r in rows):
        return None
    if count is not None and len(rows) != count:
        return None
    return rows


def rendered(bucket, key, *, timeout=60, count=None):
    return wait_for(lambda: finished(bucket, key, count=count), timeout=timeout, what=f"renditions of {key}")


def test_every_viewer_kind_renders_from_real_uploads(
    minio, live_bucket, running_consumer, celery_worker_process, settings
):
    b = live_bucket.name
    v2 = "v2/artifacts/flowers/5f1c1a7e-95b2-4bb0-9a86-3b3f5c3b1f10"
    uploads = {
        "photos/run1/train/sample.jpg": (files.jpeg(1600, 1200, orientation=6), "image/jpeg"),
        "photos/run1/train/mask.png": (files.png(alpha=True), "image/png"),
        "tables/run1/prep/train.tsv": (files.csv_text(80).replace(b",", b"\t"), "text/tab-separated-values"),
        "logs/run1/train/main.log": (
            b"".join(b"step %d loss 0.%d\n" % (i, i) for i in range(20000)),
            "text/plain",
        ),
        "prog/run1/train/progress.json": (
            b'{"current": 30, "total": 120, "message": "epoch 3/12"}',
            "application/json",
        ),
        f"{v2}/report/0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/html_artifact": (
            b"<!DOCTYPE html><html><body><h1>v2 report</h1></body></html>",
            "application/octet-stream",
        ),
        f"{v2}/report/0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/markdown_artifact": (
            b"# v2 summary\n\n* accuracy **0.91**\n",
            "application/octet-stream",
        ),
        "misc/run1/train/weights.bin": (b"\x00\x01" * 100, "application/octet-stream"),
        # Sources the metadata below points at (the run's own objects).
        f"{RUN}/{DAY}/evaluate/roc.csv": (files.ROC_CSV.encode(), "text/csv"),
        f"{RUN}/{DAY}/predict/part-0.csv": (files.TABLE_CSV.encode(), "text/csv"),
        f"{RUN}/{DAY}/predict/part-1.csv": (b"lily,0.66,false\n", "text/csv"),
        v1_key("3301820553", "mlpipeline-metrics.tgz"): (
            files.tgz({"mlpipeline-metrics.json": files.metrics_json()}),
            "application/gzip",
        ),
    }
    for key, (data, ctype) in uploads.items():
        put(minio, b, key, data, ctype)
    meta = files.ui_metadata(bucket=b, run_prefix=f"{RUN}/{DAY}")
    meta_key = v1_key("3301820554", "mlpipeline-ui-metadata.tgz")
    put(minio, b, meta_key, files.tgz({"mlpipeline-ui-metadata.json": json.dumps(meta).encode()}))

    # image: a JPEG thumbnail, upright (EXIF orientation 6 turns 1600x1200 into portrait)
    (jpg,) = rendered(b, "photos/run1/train/sample.jpg")
    assert jpg.status == "ready" and jpg.viewer == "image"
    thumb = Image.open(minio.get_object(settings.PREVIEW_BUCKET, jpg.preview_key))
    assert thumb.height == settings.THUMBNAIL_SIZE and thumb.width < thumb.height
    assert jpg.preview_key.startswith(preview_prefix() + "/")
    (png,) = rendered(b, "photos/run1/train/mask.png")
    assert png.payload["thumb_content_type"] == "image/png"

    (tsv,) = rendered(b, "tables/run1/prep/train.tsv")
    assert tsv.payload["row_count"] == 80 and tsv.payload["rows"][1][1] == "item\t 1"
    assert [c["type"] for c in tsv.payload["columns"]] == ["integer", "string", "number", "boolean"]

    (log,) = rendered(b, "logs/run1/train/main.log")
    assert log.payload["truncated"] and log.payload["text"].endswith("step 19999 loss 0.19999\n")
    assert len(log.payload["text"].encode()) <= settings.TEXT_TAIL_BYTES

    (prog,) = rendered(b, "prog/run1/train/progress.json")
    assert (prog.viewer, prog.payload["percent"], prog.payload["message"]) == ("progress", 25.0, "epoch 3/12")

    (html,) = rendered(b, f"{v2}/report/0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/html_artifact")
    assert html.viewer == "web_app" and html.preview_key
    assert b"v2 report" in minio.get_object(settings.PREVIEW_BUCKET, html.preview_key).read()
    (md,) = rendered(b, f"{v2}/report/0a6b2c43-3b8e-4f5e-9d0c-1e2f3a4b5c6d/markdown_artifact")
    assert md.viewer == "markdown" and "<strong>0.91</strong>" in md.payload["html"]

    (other,) = rendered(b, "misc/run1/train/weights.bin")
    assert (other.viewer, other.payload["size"]) == ("other", 200)

    (met,) = rendered(b, v1_key("3301820553", "mlpipeline-metrics.tgz"))
    assert [m["display"] for m in met.payload["metrics"]] == ["91.37%", "0.95"]

    outs = rendered(b, meta_key, count=6)
    assert [(o.viewer, o.status) for o in outs] == [
        ("confusion_matrix", "ready"),
        ("roc", "ready"),
        ("table", "ready"),
        ("markdown", "ready"),
        ("tensorboard", "ready"),
        ("web_app", "ready"),
    ]
    cm, roc, table, md, tb, app = outs
    assert cm.payload["labels"] == files.CONFUSION_LABELS and cm.payload["counts"][0] == [9, 1, 1]
    assert roc.payload["points"] == 101 and 0.7 < roc.payload["auc"] < 0.9
    # The wildcard concatenated both parts, under the declared header.
    assert [c["name"] for c in table.payload["columns"]] == ["flower", "score", "correct"]
    assert [r[0] for r in table.payload["rows"]] == ["tulip", "rose", "daisy", "lily"]
    assert "<script" not in md.payload["html"] and "&lt;script&gt;" in md.payload["html"]
    assert tb.payload["logdir"].endswith("/train/logs")
    assert b"Hello, World!" in minio.get_object(settings.PREVIEW_BUCKET, app.preview_key).read()


def test_hostile_inputs_fail_with_reasons_and_the_worker_carries_on(
    minio, live_bucket, running_consumer, celery_worker_process
):
    b = live_bucket.name
    hostile = {
        "evil/run/step/dotdot.tgz": (files.tgz({"../../etc/cron.d/x": b"* * * * * boom"}), "unsafe path"),
        "evil/run/step/link.tgz": (files.tgz_symlink(), "is a link"),
        "evil/run/step/huge.tgz": (files.tgz_declaring(10 * 1024**3), "declares 10.0\xa0GB"),
        "evil/run/step/bomb.png": (files.png_bomb(), "decompression bomb"),
        "evil/run/step/garbage.csv": (files.RAGGED_CSV, "binary data"),
    }
    for key, (data, _) in hostile.items():
        put(minio, b, key, data)
    put(minio, b, "evil/run/step/ragged.csv", files.RAGGED_CSV.replace(b"\x00", b""), "text/csv")
    put(
        minio,
        b,
        "evil/run/step/mlpipeline-ui-metadata.json",
        json.dumps(
            {
                "version": 1,
                "outputs": [
                    {"type": "3d-hologram", "source": "x"},
                    {"type": "markdown", "storage": "inline", "source": "still **shown**"},
                    {"type": "table", "format": "csv", "source": "https://example.com/leak.csv"},
                    {"type": "roc", "format": "csv", "source": f"minio://{b}/other-run/step/roc.csv"},
                ],
            }
        ).encode(),
    )
    for key, (_, reason) in hostile.items():
        (out,) = rendered(b, key)
        assert out.status == "failed" and reason in out.error, (key, out.error)
    (ragged,) = rendered(b, "evil/run/step/ragged.csv")
    assert ragged.status == "ready" and any(
        "different number of fields" in n for n in ragged.payload["notices"]
    )
    unknown, md, remote, elsewhere = rendered(b, "evil/run/step/mlpipeline-ui-metadata.json", count=4)
    assert unknown.status == "failed" and "Unknown output type '3d-hologram'" in unknown.error
    assert md.status == "ready" and "<strong>shown</strong>" in md.payload["html"]
    assert remote.status == "failed" and "https" in remote.error
    assert elsewhere.status == "failed" and "is not available to this run's viewers" in elsewhere.error
    # Still serving: a fine file after all that renders.
    put(minio, b, "evil/run/step/after.md", b"# fine")
    (after,) = rendered(b, "evil/run/step/after.md")
    assert after.status == "ready"


def test_a_new_version_replaces_the_preview_and_deleted_artifacts_are_not_rendered(
    minio, live_bucket, running_consumer, celery_worker_process
):
    b = live_bucket.name
    key = "grow/run/train/main.log"
    put(minio, b, key, b"epoch 1\n")
    (first,) = rendered(b, key)
    assert first.payload["text"] == "epoch 1\n"
    put(minio, b, key, b"epoch 1\nepoch 2\n")
    wait_for(
        lambda: (r := finished(b, key)) and r[0].payload.get("text") == "epoch 1\nepoch 2\n",
        what="the grown tail",
    )
    artifact = Artifact.objects.get(bucket=live_bucket, key=key)
    assert list(Rendition.objects.filter(artifact=artifact).values_list("etag", flat=True)) == [artifact.etag]

    put(minio, b, "grow/run/train/gone.txt", b"x")
    minio.remove_object(b, "grow/run/train/gone.txt")
    wait_for(
        lambda: Artifact.objects.filter(key="grow/run/train/gone.txt", deleted=True).exists(),
        what="the delete",
    )
    put(minio, b, "grow/run/train/marker.txt", b"after")
    rendered(b, "grow/run/train/marker.txt")
    gone = Artifact.objects.get(key="grow/run/train/gone.txt")
    assert not Rendition.objects.filter(artifact=gone, status__in=["ready", "rendering"]).exists()
