"""The one place that maps a viewer kind to its renderer (docs/viewers.md, "add a viewer kind").

``render_artifact`` unpacks KFP v1 ``.tgz`` outputs first, then classifies
each file (runs/kinds.py) and calls its renderer. A ``RenderError`` becomes
a failed output carrying its reason; ``StorageUnavailable`` propagates so
the task can retry.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from runs import kinds
from runs.kinds import Viewer
from runs.rendering import (
    archive,
    confusion_matrix,
    image,
    kfp_metadata,
    markdown,
    metrics,
    other,
    parquet,
    progress,
    roc,
    table,
    text,
    web_app,
)
from runs.rendering.base import Context, Output, RenderError, Source, failed

Renderer = Callable[[Source, Context], list[Output]]

RENDERERS: dict[str, Renderer] = {
    kinds.IMAGE: image.render,
    kinds.TABLE: table.render,
    kinds.PARQUET: parquet.render,
    kinds.CONFUSION_MATRIX: confusion_matrix.render,
    kinds.ROC: roc.render,
    kinds.MARKDOWN: markdown.render,
    kinds.WEB_APP: web_app.render,
    kinds.TEXT: text.render,
    kinds.PROGRESS: progress.render,
    kinds.METRICS: metrics.render,
    kinds.KFP_UI_METADATA: kfp_metadata.render,
    kinds.OTHER: other.render,
}

# The viewer a kind's renditions show under while pending or when failed.
VIEWER_OF = {
    kinds.KFP_UI_METADATA: Viewer.OTHER,
    kinds.KFP_ARCHIVE: Viewer.OTHER,
    kinds.PARQUET: Viewer.TABLE,
}


def viewer_of(kind: str) -> str:
    return VIEWER_OF.get(kind, kind if kind in RENDERERS else Viewer.OTHER)


def _render_file(source: Source, kind: str, ctx: Context) -> list[Output]:
    if kind in (kinds.OTHER, kinds.KFP_ARCHIVE):
        kind = kinds.refine_kind(source.name, source.read(512), source.content_type)
    if kind == kinds.TABLE:
        first = source.read(1024).split(b"\n", 1)[0].decode("utf-8", errors="replace")
        kind = kinds.table_kind(first)
    renderer = RENDERERS.get(kind, other.render)
    try:
        return renderer(source, ctx)
    except RenderError as exc:
        return [failed(viewer_of(kind), source.name, str(exc))]


def render_artifact(
    source: Source, kind: str, ctx: Context, *, reference: dict | None = None
) -> list[Output]:
    """Every rendition of one object version, in position order.

    ``reference``: the options of the KFP metadata output that names this object
    (runs.services.references), which then decide how it is shown.
    """
    if reference is not None and not source.name.lower().endswith(".tgz"):
        try:
            return kfp_metadata.render_referenced(source, ctx, options=reference)
        except RenderError as exc:
            return [failed(viewer_of(kind), source.name, str(exc))]
    if source.name.lower().endswith(".tgz"):
        try:
            files = archive.unpack(source.read_all(settings.ARCHIVE_MAX_BYTES, "The archive"))
        except RenderError as exc:
            return [failed(viewer_of(kind), source.name, str(exc))]
        outputs: list[Output] = []
        for inner in files:
            inner_kind = kinds.guess_kind(inner.name)
            if inner_kind == kinds.OTHER and kind not in (kinds.KFP_ARCHIVE, kinds.OTHER):
                inner_kind = kind  # "mlpipeline-metrics.tgz" holding "data" is still metrics
            outputs += _render_file(inner, inner_kind, ctx)
        return outputs
    return _render_file(source, kind, ctx)
