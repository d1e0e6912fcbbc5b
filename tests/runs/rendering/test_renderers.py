"""Renderers as pure functions: bytes in, payload out (no services involved).

``ctx.store`` keeps preview objects in a dict here; the integration tests
(tests/runs/test_renditions_live.py) store them in the real MinIO.
"""

import io
import json

import pytest
from PIL import Image

from runs import kinds
from runs.rendering import archive, confusion_matrix, image, markdown, metrics, progress, roc, table, text
from runs.rendering.base import BytesSource, Context, RenderError
from runs.rendering.registry import render_artifact
from tests.runs.rendering import files


class Stored(dict):
    def ctx(self, **extra):
        def store(name, data, content_type):
            key = f"k{len(self)}-{name}"
            self[key] = (data, content_type)
            return key

        def store_source(source):
            key = store("src", source.data, "")
            return {"bucket": "previews", "key": key, "etag": "e"}

        return Context(store=store, store_source=store_source, **extra)


@pytest.fixture
def stored(settings):
    return Stored()


# --- kinds -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, ctype, kind",
    [
        ("plots/loss.png", "", kinds.IMAGE),
        ("data/train.csv", "", kinds.TABLE),
        ("x.tsv", "", kinds.TABLE),
        ("README.md", "", kinds.MARKDOWN),
        ("report.html", "", kinds.WEB_APP),
        ("main.log", "", kinds.TEXT),
        ("progress.json", "", kinds.PROGRESS),
        ("progress.txt", "", kinds.PROGRESS),
        ("mlpipeline-metrics.tgz", "", kinds.METRICS),
        ("mlpipeline-ui-metadata.tgz", "", kinds.KFP_UI_METADATA),
        ("model.tgz", "", kinds.KFP_ARCHIVE),
        ("html_artifact", "text/html", kinds.WEB_APP),
        ("picture", "image/svg+xml", kinds.OTHER),
        ("weights.bin", "application/octet-stream", kinds.OTHER),
    ],
)
def test_guess_kind(name, ctype, kind):
    assert kinds.guess_kind(name, ctype) == kind


def test_refine_kind_reads_kfp_v2_files_without_extension():
    assert kinds.refine_kind("html_artifact", b"<!DOCTYPE html><html>") == kinds.WEB_APP
    assert kinds.refine_kind("markdown_artifact", b"# Report\nok") == kinds.MARKDOWN
    assert kinds.refine_kind("output", files.png()[:64]) == kinds.IMAGE
    assert kinds.refine_kind("output", b"\x00\x01binary") == kinds.OTHER
    assert kinds.refine_kind("output", b"epoch 1 loss 0.3\n") == kinds.TEXT


# --- image -------------------------------------------------------------------------


def test_jpeg_thumbnail_applies_exif_orientation_and_fits_the_box(settings, stored):
    settings.THUMBNAIL_SIZE = 100
    # Orientation 6: the camera was turned; the viewer must see it upright (portrait).
    (out,) = image.render(BytesSource("photo.jpg", files.jpeg(640, 480, orientation=6)), stored.ctx())
    assert out.payload["width"] == 640 and out.payload["exif_orientation"] == 6
    thumb = Image.open(io.BytesIO(stored[out.preview_key][0]))
    assert thumb.format == "JPEG" and max(thumb.size) == 100 and thumb.size[1] > thumb.size[0]


def test_png_with_alpha_keeps_transparency(stored):
    (out,) = image.render(BytesSource("a.png", files.png(alpha=True)), stored.ctx())
    assert stored[out.preview_key][1] == "image/png"
    assert Image.open(io.BytesIO(stored[out.preview_key][0])).mode == "RGBA"


def test_decompression_bomb_is_refused_before_decoding(stored):
    with pytest.raises(RenderError, match="decompression bomb.*10000000000 pixels"):
        image.render(BytesSource("bomb.png", files.png_bomb()), stored.ctx())
    assert not stored


def test_not_an_image(stored):
    with pytest.raises(RenderError, match="Not an image"):
        image.render(BytesSource("x.png", b"hello"), stored.ctx())


# --- tables ------------------------------------------------------------------------


def test_small_csv_columns_types_first_page(stored, settings):
    settings.TABLE_PAGE_ROWS = 10
    (out,) = table.render(BytesSource("t.csv", files.csv_text(120)), stored.ctx())
    p = out.payload
    assert [(c["name"], c["type"]) for c in p["columns"]] == [
        ("id", "integer"),
        ("name", "string"),
        ("score", "number"),
        ("passed", "boolean"),
    ]
    assert p["row_count"] == 120 and len(p["rows"]) == 10 and p["rows"][3] == ["3", "item, 3", "1.5", "true"]
    assert p["notices"] == []


def test_large_csv_is_indexed_and_any_page_reads_right(stored, settings):
    settings.TABLE_SAMPLE_BYTES = 2048
    settings.TABLE_INDEX_CHUNK_BYTES = 4096
    lines = ["n,text"] + [
        f'{i},"line {i}\nsecond ""quoted"" part"' if i % 7 == 0 else f"{i},plain {i}" for i in range(5000)
    ]
    data = ("\n".join(lines) + "\n").encode()
    published = []
    (out,) = table.render(BytesSource("big.csv", data), stored.ctx(publish=published.append))
    assert published and published[0][0].payload["indexed"] is False  # first page shown early
    assert published[0][0].payload["rows"][0] == ["0", 'line 0\nsecond "quoted" part']
    p = out.payload
    assert p["row_count"] == 5000 and p["indexed"]
    index = json.loads(stored[p["index_key"]][0])
    assert len(index) > 10

    def read(offset, length):
        end = None if length is None else offset + length
        yield data[offset:end]

    for start in (0, 1, 49, 2345, 4990):
        page = table.read_page(p, index, read, start=start, count=5)
        assert [r[0] for r in page["rows"]] == [str(i) for i in range(start, min(start + 5, 5000))]
    page = table.read_page(p, index, read, start=1400, count=1)
    assert page["rows"] == [["1400", 'line 1400\nsecond "quoted" part']]


def test_build_index_counts_records_not_lines():
    data = b'a,b\n1,"x\ny"\n2,z\n3,"p\n\nq"\n'
    records, index = table.build_index([data[i : i + 3] for i in range(0, len(data), 3)], 4)
    assert records == 4
    assert all(data[off - 1 : off] == b"\n" for _, off in index[1:])


def test_ragged_rows_and_garbage_give_a_partial_table_with_notices(stored):
    (out,) = table.render(BytesSource("r.csv", files.RAGGED_CSV.replace(b"\x00", b"")), stored.ctx())
    notices = " ".join(out.payload["notices"])
    assert "different number of fields" in notices and "UTF-8" in notices
    assert all(len(r) == 3 for r in out.payload["rows"])


def test_binary_data_is_not_a_table(stored):
    with pytest.raises(RenderError, match="binary data"):
        table.render(BytesSource("r.csv", files.RAGGED_CSV), stored.ctx())


def test_sorting_small_tables(stored):
    (out,) = table.render(BytesSource("t.csv", files.csv_text(30)), stored.ctx())
    data = files.csv_text(30)
    page = table.read_page(
        out.payload, [[0, 0]], lambda o, n: [data], start=0, count=3, sort=2, descending=True
    )
    assert [r[0] for r in page["rows"]] == ["29", "28", "27"]


# --- charts ------------------------------------------------------------------------


def test_confusion_matrix_counts_percentages_declared_label_order():
    m = confusion_matrix.matrix(files.CONFUSION_CSV, labels=["bird", "cat", "dog"])
    assert m["labels"] == ["bird", "cat", "dog"]
    # bird is the third label of the CSV (i=2): bird→bird 9+2, bird→cat and bird→dog 1+2.
    assert m["counts"][0] == [11, 3, 3]
    assert m["percent"][0] == [64.7, 17.6, 17.6]
    assert m["counts"][1] == [1, 9, 1]  # cat row, in the declared order bird, cat, dog
    assert m["total"] == sum(sum(r) for r in m["counts"])


def test_confusion_matrix_needs_columns():
    with pytest.raises(RenderError, match="target, predicted and count"):
        confusion_matrix.matrix("a,b\n1,2\n", schema=[{"name": "a"}, {"name": "b"}])


def test_roc_auc_and_shape_preserving_downsampling():
    rows = "fpr,tpr,thresholds\n" + "\n".join(
        f"{i / 10000},{min(1, (i / 10000) ** 0.25)},{1 - i / 10000}" for i in range(10001)
    )
    c = roc.curve(rows, max_points=200)
    assert len(c["fpr"]) == 200 and c["points"] == 10001
    assert c["fpr"][0] == 0 and c["fpr"][-1] == 1 and c["tpr"][-1] == 1
    assert c["auc"] == pytest.approx(0.8, abs=0.001)  # ∫ x^¼ = 0.8
    # The steep start survives downsampling: a point with fpr < 1% and tpr > 25 %.
    assert any(f < 0.01 and t > 0.25 for f, t in zip(c["fpr"], c["tpr"], strict=False))


def test_roc_from_kfp_csv_without_header():
    c = roc.curve(files.ROC_CSV, schema=[{"name": "fpr"}, {"name": "tpr"}, {"name": "thresholds"}])
    assert c["points"] == 101 and c["thresholds"][0] == 1.0


# --- markdown, progress, metrics, text ----------------------------------------------


def test_markdown_drops_raw_html_and_script_links():
    html = markdown.to_html(
        "# T\n<script>alert(1)</script>\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    )
    assert "<h1>T</h1>" in html
    # Raw HTML is shown as text, never as elements; script links lose their href.
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html


def test_progress_json_and_text():
    assert progress.parse('{"current": 40, "total": 160, "message": "epoch 2"}')["percent"] == 25.0
    assert progress.parse("10% done\n40% done\n")["percent"] == 40.0
    with pytest.raises(RenderError, match="total greater than zero"):
        progress.parse('{"current": 1, "total": 0}')


def test_metrics_table():
    m = metrics.parse(files.metrics_json().decode())
    assert [(x["name"], x["display"]) for x in m["metrics"]] == [
        ("accuracy-score", "91.37%"),
        ("roc-auc-score", "0.95"),
    ]


def test_text_tail_cuts_to_whole_lines():
    data = b"".join(f"line {i}\n".encode() for i in range(10000))
    t = text.tail(BytesSource("main.log", data), size=1000)
    assert t["truncated"] and t["text"].startswith("line ") and t["text"].endswith("line 9999\n")
    earlier = text.tail(BytesSource("main.log", data), before=t["start"], size=1000)
    assert earlier["end"] == t["start"] and earlier["text"].endswith(
        f"line {t['text'].split()[1]}\n".replace(t["text"].split()[1], str(int(t["text"].split()[1]) - 1))
    )


# --- archives ----------------------------------------------------------------------


def test_kfp_archive_with_one_file_is_classified_by_its_member(stored):
    (out,) = render_artifact(
        BytesSource("mlpipeline-metrics.tgz", files.tgz({"mlpipeline-metrics.json": files.metrics_json()})),
        kinds.METRICS,
        stored.ctx(),
    )
    assert out.viewer == "metrics" and not out.failed


@pytest.mark.parametrize(
    "data, reason",
    [
        (files.tgz({"../evil.csv": b"a,b\n"}), "unsafe path"),
        (files.tgz_symlink(), "is a link"),
        (files.tgz_declaring(10 * 1024**3), "declares 10.0\xa0GB"),
        (files.tgz_many(12), "more than 4 members"),
        (b"\x1f\x8b not really gzip", "Not a readable tar archive"),
    ],
)
def test_hostile_archives_are_refused_with_a_reason(stored, data, reason):
    (out,) = render_artifact(BytesSource("data.tgz", data), kinds.KFP_ARCHIVE, stored.ctx())
    assert out.failed and reason in out.error


def test_archive_unpack_reads_in_memory():
    inner = archive.unpack(
        files.tgz({"./": b"", "data.csv": b"a\n1\n"}) if False else files.tgz({"data.csv": b"a\n1\n"})
    )
    assert [(f.name, f.data) for f in inner] == [("data.csv", b"a\n1\n")]


def test_metadata_with_unknown_types_keeps_the_known_ones(stored):
    doc = {
        "version": 1,
        "outputs": [
            {"type": "sparkles", "source": "x"},
            {"type": "markdown", "storage": "inline", "source": "# Hi"},
            {"type": "table", "source": "gs://bucket/file.csv"},
        ],
    }
    outs = render_artifact(
        BytesSource("mlpipeline-ui-metadata.json", json.dumps(doc).encode()),
        kinds.KFP_UI_METADATA,
        stored.ctx(),
    )
    assert [o.failed for o in outs] == [True, False, True]
    assert "Unknown output type 'sparkles'" in outs[0].error
    assert "<h1>Hi</h1>" in outs[1].payload["html"]
    assert "gs" in outs[2].error and "not read" in outs[2].error


def test_csv_headers_of_charts_make_charts(stored):
    (cm,) = render_artifact(
        BytesSource("cm.csv", b"target,predicted,count\na,a,3\na,b,1\nb,b,2\n"), kinds.TABLE, stored.ctx()
    )
    assert cm.viewer == "confusion_matrix" and cm.payload["counts"] == [[3, 1], [0, 2]]
    (curve,) = render_artifact(
        BytesSource("roc.csv", b"fpr,tpr,threshold\n0,0,1\n0.5,0.8,0.5\n1,1,0\n"), kinds.TABLE, stored.ctx()
    )
    assert curve.viewer == "roc" and curve.payload["auc"] == 0.65
    (plain,) = render_artifact(BytesSource("t.csv", b"fpr,other\n1,2\n"), kinds.TABLE, stored.ctx())
    assert plain.viewer == "table"


def test_an_unreadable_page_is_a_reason_not_a_crash(stored):
    data = b"a,b\n1,2\n3," + b"x" * (1024 * 1024 + 10) + b"\n"
    payload = {
        "columns": [{"name": "a", "type": "integer"}, {"name": "b", "type": "string"}],
        "has_header_row": True,
    }
    with pytest.raises(RenderError, match="not readable CSV"):
        table.read_page(payload, [[0, 0]], lambda o, n: [data], start=0, count=5)


def test_camera_mpo_jpeg_is_a_jpeg(stored):
    im = Image.new("RGB", (400, 300), (1, 2, 3))
    out = io.BytesIO()
    im.save(out, "MPO", save_all=True, append_images=[im.copy()])
    (rendition,) = image.render(BytesSource("camera.jpg", out.getvalue()), stored.ctx())
    assert rendition.payload["format"] == "MPO" and rendition.payload["content_type"] == "image/jpeg"


def test_a_csv_without_header_keeps_its_first_row(stored):
    (out,) = table.render(BytesSource("roc.csv", files.ROC_CSV.encode()), stored.ctx())
    assert [c["name"] for c in out.payload["columns"]] == ["column 1", "column 2", "column 3"]
    assert out.payload["rows"][0] == ["0.00", "0.0000", "1.00"] and out.payload["row_count"] == 101
    page = table.read_page(out.payload, [[0, 0]], lambda o, n: [files.ROC_CSV.encode()], start=100, count=5)
    assert page["rows"] == [["1.00", "1.0000", "0.00"]]
