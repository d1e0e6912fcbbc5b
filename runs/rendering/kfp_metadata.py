"""KFP v1 ``mlpipeline-ui-metadata``: one rendition per listed output.

``{"version": 1, "outputs": [{type, storage, source, format, header, schema,
labels}]}``. ``storage: inline`` means ``source`` is the content itself;
otherwise ``source`` is a URI. Only ``minio://`` and ``s3://`` URIs are read,
and only where the run's viewers may look (``ctx.fetch`` decides);
wildcards concatenate the matching objects in key order. Each output fails
or succeeds on its own: one bad output never hides the others.

Every output whose source is an object is also reported through
``ctx.refer`` (the rendition service records it as an ``ArtifactReference``,
docs/viewers.md "References"), and ``render_referenced`` shows such an object
on its own page as the output would: a ``roc.csv`` referenced as ``roc`` is a
ROC curve there too, with the output's schema.
"""

from __future__ import annotations

import json

from django.conf import settings

from runs import kinds
from runs.rendering import confusion_matrix, markdown, roc, table, tensorboard, web_app
from runs.rendering.base import (
    BytesSource,
    Context,
    Output,
    RenderError,
    Source,
    decode_text,
    failed,
    load_json,
)

KNOWN = ("confusion_matrix", "roc", "table", "markdown", "web-app", "tensorboard")
# Output types whose source is a file, the kind that file takes and what a reference says.
REFERENCE_KINDS = {
    "roc": kinds.ROC,
    "confusion_matrix": kinds.CONFUSION_MATRIX,
    "table": kinds.TABLE,
    "markdown": kinds.MARKDOWN,
    "web-app": kinds.WEB_APP,
}
REFERENCE_TITLES = {
    "roc": "ROC curve",
    "confusion_matrix": "Confusion matrix",
    "table": "Table",
    "markdown": "Markdown",
    "web-app": "Web app",
}
# What a reference keeps of its output, to show the file alone as the output would.
_OPTIONS = ("type", "format", "header", "schema", "labels")
_VIEWER = {
    "web-app": web_app.VIEWER,
    "confusion_matrix": confusion_matrix.VIEWER,
    "roc": roc.VIEWER,
    "table": table.VIEWER,
    "markdown": markdown.VIEWER,
    "tensorboard": tensorboard.VIEWER,
}


def _content(output: dict, ctx: Context, what: str) -> BytesSource:
    source = output.get("source")
    if not isinstance(source, str) or not source:
        raise RenderError(f"The {what} output has no source.")
    if output.get("storage") == "inline":
        return BytesSource(what, source.encode())
    if not source.startswith(("minio://", "s3://")):
        scheme = source.split("://", 1)[0] if "://" in source else "a local path"
        raise RenderError(
            f"Sources on {scheme} are not read by Pipelens; only minio:// and s3:// "
            f"objects are ({source[:200]})."
        )
    if ctx.fetch is None:
        raise RenderError(f"The {what} output's source {source!r} cannot be read here.")
    parts = ctx.fetch(source)
    cap = settings.TEXT_MAX_BYTES
    chunks, total = [], 0
    for part in parts:
        data = part.read_all(cap - total, f"The {what} source")
        total += len(data)
        if chunks and not chunks[-1].endswith(b"\n"):
            chunks.append(b"\n")
        chunks.append(data)
    return BytesSource(parts[0].name if len(parts) == 1 else what, b"".join(chunks))


def _names(value, what: str) -> list[str] | None:
    """A list of column names or labels (strings or numbers), or None; RenderError for anything else."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        raise RenderError(f"The output's {what} must be a list of names.")
    return [str(v) for v in value]


def _schema(value, kind: str) -> list[dict] | None:
    """KFP's ``schema``: a list of ``{"name": …, "type": …}`` objects, or None."""
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(
        isinstance(c, dict) and isinstance(c.get("name", ""), str) for c in value
    ):
        raise RenderError(f'The {kind} output\'s schema must be a list of {{"name": …}} objects.')
    return value


def _one(output, ctx: Context) -> list[Output]:
    if not isinstance(output, dict):
        raise RenderError("An output is not a JSON object.")
    kind = output.get("type")
    if kind not in KNOWN:
        raise RenderError(f"Unknown output type {kind!r}; Pipelens shows {', '.join(KNOWN)}.")
    if kind == "tensorboard":
        source = output.get("source")
        if not source:
            raise RenderError("The tensorboard output has no source (log directory).")
        return [tensorboard.output(source if isinstance(source, str) else json.dumps(source))]
    return _show(kind, output, _content(output, ctx, kind), ctx)


def _show(kind: str, output: dict, content: Source, ctx: Context) -> list[Output]:
    """``content`` shown as an output of type ``kind`` with ``output``'s options."""
    fmt = output.get("format", "csv")
    if kind in ("confusion_matrix", "roc", "table") and fmt != "csv":
        raise RenderError(f"The {kind} output's format {str(fmt)[:40]!r} is not supported (only csv).")
    schema = _schema(output.get("schema"), kind) if kind in ("confusion_matrix", "roc", "table") else None
    if kind == "confusion_matrix":
        return confusion_matrix.render(
            content, ctx, labels=_names(output.get("labels"), "labels"), schema=schema
        )
    if kind == "roc":
        return roc.render(content, ctx, schema=schema)
    if kind == "table":
        header = _names(output.get("header"), "header")
        if header is None and schema:
            header = [c.get("name", "") for c in schema]
        return table.render(content, ctx, header=header, title="Table")
    if kind == "markdown":
        return markdown.render(content, ctx, title="Markdown")
    return web_app.render(content, ctx, title="Web app")


def reference_of(output) -> dict | None:
    """What to record of an output whose source is an object (minio:// or s3://): its type
    and the options that decide how the object is shown; None for anything else."""
    if not isinstance(output, dict) or not isinstance(output.get("type"), str):
        return None
    if output["type"] not in REFERENCE_KINDS:
        return None
    source = output.get("source")
    if output.get("storage") == "inline" or not isinstance(source, str):
        return None
    if not source.strip().startswith(("minio://", "s3://")):
        return None
    return {"uri": source.strip(), "options": {k: output[k] for k in _OPTIONS if k in output}}


def render_referenced(source: Source, ctx: Context, *, options: dict) -> list[Output]:
    """The object ``source`` shown alone as the metadata output that references it would show
    it (``options``: the output's type, format, header, schema, labels)."""
    kind = options.get("type")
    if not isinstance(kind, str) or kind not in REFERENCE_KINDS:
        raise RenderError(f"Unknown output type {str(kind)[:40]!r}.")
    return _show(kind, options, source, ctx)


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    text, _ = decode_text(source.read_all(settings.JSON_MAX_BYTES, "The metadata file"))
    doc = load_json(text, "mlpipeline-ui-metadata")
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    if not isinstance(outputs, list) or not outputs:
        raise RenderError('mlpipeline-ui-metadata needs a non-empty "outputs" list.')
    cap = settings.KFP_METADATA_MAX_OUTPUTS
    result: list[Output] = []
    for position, output in enumerate(outputs[:cap]):
        reference = reference_of(output)
        if reference is not None and ctx.refer is not None:
            ctx.refer(position, reference["uri"], reference["options"])
        kind = output.get("type") if isinstance(output, dict) else None
        viewer = _VIEWER.get(kind, "other") if isinstance(kind, str) else "other"
        try:
            result += _one(output, ctx)
        except RenderError as exc:
            result.append(
                failed(
                    viewer,
                    str(output.get("type", "output")) if isinstance(output, dict) else "output",
                    str(exc),
                )
            )
    if len(outputs) > cap:
        result.append(
            failed(
                "other", "More outputs", f"{len(outputs) - cap} more outputs were not shown (limit {cap})."
            )
        )
    return result
