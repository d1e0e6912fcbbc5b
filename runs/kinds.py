"""Which viewer kind an artifact gets, from its name and content type.

One place for the decision (DESIGN.md §5). Ingestion stores the guess on the
artifact; the renderer may refine it once it has read the content (a KFP v1
``.tgz`` holds one file whose own name decides).
"""

import posixpath

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
KFP_UI_METADATA = "kfp_ui_metadata"
KFP_ARCHIVE = "kfp_archive"
OTHER = "other"

_BY_EXTENSION = {
    ".png": IMAGE, ".jpg": IMAGE, ".jpeg": IMAGE, ".gif": IMAGE, ".webp": IMAGE, ".bmp": IMAGE,
    ".csv": TABLE, ".tsv": TABLE,
    ".md": MARKDOWN, ".markdown": MARKDOWN,
    ".html": WEB_APP, ".htm": WEB_APP,
    ".txt": TEXT, ".log": TEXT,
}

_BY_NAME = {
    "mlpipeline-ui-metadata.json": KFP_UI_METADATA,
    "mlpipeline-ui-metadata": KFP_UI_METADATA,
    "mlpipeline-metrics.json": METRICS,
    "mlpipeline-metrics": METRICS,
    "metrics.json": METRICS,
    "progress.json": PROGRESS,
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
    if content_type.startswith("image/"):
        return IMAGE
    if content_type.startswith("text/"):
        return TEXT
    return OTHER
