"""Kinds and viewers: every name, and which kind an artifact gets (docs/viewers.md).

An artifact's *kind* is decided here from its name and content type
(ingestion stores the guess; the renderer may refine it once it has read the
content: a KFP v1 ``.tgz`` holds one file whose own name decides). A
rendition's *viewer* names the partial that shows it
(``runs/templates/runs/viewers/<viewer>.html``). Both sets of names are
declared here and nowhere else.
"""

import posixpath


class Viewer:
    """Rendition viewer names (``Rendition.viewer``)."""

    IMAGE = "image"
    TABLE = "table"
    CONFUSION_MATRIX = "confusion_matrix"
    ROC = "roc"
    MARKDOWN = "markdown"
    WEB_APP = "web_app"
    TEXT = "text"
    PROGRESS = "progress"
    METRICS = "metrics"
    TENSORBOARD = "tensorboard"
    OTHER = "other"
    # The output of a user's recipe (docs/recipes.md): written by runs/services/recipes.py,
    # never by the built-in render path, which leaves these rows alone.
    RECIPE = "recipe"

    ALL = frozenset(
        {
            IMAGE,
            TABLE,
            CONFUSION_MATRIX,
            ROC,
            MARKDOWN,
            WEB_APP,
            TEXT,
            PROGRESS,
            METRICS,
            TENSORBOARD,
            OTHER,
            RECIPE,
        }
    )


# Artifact kinds (``Artifact.kind``). Most are shown by the viewer of the same
# name, so they are that name; the KFP files are unpacked or read and shown by
# other viewers.
IMAGE = Viewer.IMAGE
TABLE = Viewer.TABLE
CONFUSION_MATRIX = Viewer.CONFUSION_MATRIX
ROC = Viewer.ROC
MARKDOWN = Viewer.MARKDOWN
WEB_APP = Viewer.WEB_APP
TEXT = Viewer.TEXT
PROGRESS = Viewer.PROGRESS
METRICS = Viewer.METRICS
# Parquet datasets are shown by the table viewer (runs/rendering/parquet.py).
PARQUET = "parquet"
KFP_UI_METADATA = "kfp_ui_metadata"
KFP_ARCHIVE = "kfp_archive"
OTHER = "other"

# Kinds a KFP metadata reference may replace (runs/services/references.py): plain data files.
# Never the KFP files themselves (metadata, metrics, archives), so no reference can turn a
# metadata file into a table and back again, nor images or Parquet, which a CSV output
# cannot describe.
RESTYLABLE_BY_REFERENCE = frozenset({TABLE, CONFUSION_MATRIX, ROC, MARKDOWN, WEB_APP, TEXT, OTHER})


def restylable(name: str, content_type: str = "") -> bool:
    """Whether a reference may give the file ``name`` its kind (decided on what its name gives)."""
    return guess_kind(name, content_type) in RESTYLABLE_BY_REFERENCE


_BY_EXTENSION = {
    ".png": IMAGE,
    ".jpg": IMAGE,
    ".jpeg": IMAGE,
    ".gif": IMAGE,
    ".webp": IMAGE,
    ".bmp": IMAGE,
    ".csv": TABLE,
    ".tsv": TABLE,
    ".parquet": PARQUET,
    ".parq": PARQUET,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".html": WEB_APP,
    ".htm": WEB_APP,
    ".txt": TEXT,
    ".log": TEXT,
}

_BY_NAME = {
    "mlpipeline-ui-metadata.json": KFP_UI_METADATA,
    "mlpipeline-ui-metadata": KFP_UI_METADATA,
    "mlpipeline-metrics.json": METRICS,
    "mlpipeline-metrics": METRICS,
    "metrics.json": METRICS,
    "progress.json": PROGRESS,
    "progress.txt": PROGRESS,
    "progress.log": PROGRESS,
}

_BY_CONTENT_TYPE = {
    "text/html": WEB_APP,
    "text/markdown": MARKDOWN,
    "text/csv": TABLE,
    "text/tab-separated-values": TABLE,
    "application/vnd.apache.parquet": PARQUET,
    "application/x-parquet": PARQUET,
}


def guess_kind(name: str, content_type: str = "") -> str:
    """The viewer kind for an artifact called ``name`` (a path below its step)."""
    base = posixpath.basename(name).lower()
    if base.endswith(".tgz"):
        inner = base[: -len(".tgz")]
        return _BY_NAME.get(inner, KFP_ARCHIVE)
    if base in _BY_NAME:
        return _BY_NAME[base]
    ext = posixpath.splitext(base)[1]
    if ext in _BY_EXTENSION:
        return _BY_EXTENSION[ext]
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in _BY_CONTENT_TYPE:
        return _BY_CONTENT_TYPE[ctype]
    if ctype.startswith("image/") and ctype != "image/svg+xml":  # SVG is a document, not a bitmap
        return IMAGE
    if content_type.startswith("text/"):
        return TEXT
    return OTHER


def refine_kind(name: str, head: bytes, content_type: str = "") -> str:
    """The kind of a file whose name says nothing (KFP v2 writes outputs without
    extensions, e.g. ``.../html_artifact``; its ``Dataset`` outputs are often Parquet),
    from its first bytes."""
    kind = guess_kind(name, content_type)
    if kind not in (OTHER, KFP_ARCHIVE):
        return kind
    if head[:4] == b"PAR1":
        return PARQUET
    start = head.lstrip()[:200].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return WEB_APP
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8")) or (
        head[:4] == b"RIFF" and head[8:12] == b"WEBP"
    ):
        return IMAGE
    if b"\x00" in head:
        return OTHER
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a character cut at the end of the sample
            return OTHER
    base = posixpath.basename(name).lower()
    if "markdown" in base or start.startswith(b"# "):
        return MARKDOWN
    return TEXT


def table_kind(header_line: str) -> str:
    """A CSV whose header names a chart's columns is that chart (docs/viewers.md)."""
    cols = [c.strip().strip('"').lower() for c in header_line.replace("\t", ",").split(",")]
    if cols[:3] == ["target", "predicted", "count"]:
        return CONFUSION_MATRIX
    if cols[:2] == ["fpr", "tpr"] and (len(cols) == 2 or cols[2] in ("threshold", "thresholds")):
        return ROC
    return TABLE
