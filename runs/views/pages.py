"""Portal pages: the runs list, a run, an artifact, its preview fragment and download.

Thin: parse input, ask runs.selectors, render (docs/portal.md).

A run the user may not see answers 404 everywhere (page, JSON, download,
preview), exactly as a run that does not exist.
"""

from __future__ import annotations

from html import escape as esc
from types import SimpleNamespace

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET

from runs.forms import RunFilterForm
from runs.rendering.base import human_bytes
from runs.selectors.access import access_scope_for, artifact_get_visible, run_get_visible
from runs.selectors.recipes import recipes_for_artifact
from runs.selectors.run_page import artifact_get_for_preview, run_page_steps
from runs.selectors.runs_list import metric_names, run_filter_choices, run_progress_and_metrics, runs_page
from runs.services.renditions import renditions_prepare_missing
from runs.storage import ObjectGone, object_stream


def _visible_run(request, run_id: int):
    run = run_get_visible(user=request.user, run_id=run_id)
    if run is None:
        raise Http404("No such run.")
    return run


@require_GET
@login_required
def run_list(request):
    """Runs the user may see: search, filters, sort, keyset pages; live via /ws/runs/."""
    form = RunFilterForm(request.GET)
    scope = access_scope_for(user=request.user)  # once per page, for every read below
    context = {"form": form, "choices": run_filter_choices(user=request.user, scope=scope), "page": None}
    if not form.is_valid():
        return render(request, "runs/run_list.html", context, status=400)
    filters = form.filters()
    page = runs_page(
        user=request.user,
        filters=filters,
        size=settings.RUNS_PAGE_SIZE,
        after=form.cleaned_data["after_cursor"],
        before=form.cleaned_data["before_cursor"],
        scope=scope,
    )
    # Pager links keep the filters and the sort; sort links keep the filters only.
    query = request.GET.copy()
    for name in ("page", "after", "before", "fragment"):
        query.pop(name, None)
    sort_query = query.copy()
    for name in ("metric", "order", "sort"):
        sort_query.pop(name, None)
    metric_columns = _with_progress_and_metrics(request.user, scope, page.runs, filters)
    context.update(
        page=page,
        filters=filters,
        query=query.urlencode(),
        metric_columns=metric_columns,
        sort_query=sort_query.urlencode(),
        row_template=_run_row_template(metric_columns),
        live_inserts=(page.first and not filters.active and filters.sort == "recent" and not filters.metric),
    )
    template = "runs/_run_rows.html" if request.GET.get("fragment") == "rows" else "runs/run_list.html"
    return render(request, template, context)


def _with_progress_and_metrics(user, scope, runs, filters) -> list[dict]:
    """Attach ``progress`` and ``metric_cells`` to the page's runs; return the metric columns.

    Columns are the metric names of the runs the user may see (at most
    RUNS_LIST_METRIC_COLUMNS), each with its sort link state.
    """
    names = metric_names(user=user, scope=scope, limit=settings.RUNS_LIST_METRIC_COLUMNS)
    extras = run_progress_and_metrics(run_ids=[run.pk for run in runs])
    for run in runs:
        extra = extras.get(run.pk, {"progress": None, "metrics": {}})
        run.progress = extra["progress"]
        run.metric_cells = [(name, extra["metrics"].get(name, {}).get("display", "")) for name in names]
    return [
        {
            "name": name,
            "active": filters.metric == name,
            "next_order": "desc"
            if filters.metric == name and filters.metric_ascending
            else ("asc" if filters.metric == name else "desc"),
            "ascending": filters.metric == name and filters.metric_ascending,
        }
        for name in names
    ]


def _run_row_template(metric_columns) -> SimpleNamespace:
    """The empty run that runs/_run_row.html renders into the <template> run_list.js clones
    for runs that arrive live: one row markup. Its progress cell holds the progress markup."""
    return SimpleNamespace(
        pk=0,
        name="",
        pipeline="",
        bucket=SimpleNamespace(name=""),
        namespace="",
        status="",
        progress={"percent": 0, "message": ""},
        artifact_count="",
        last_event_at=None,
        metric_cells=[(col["name"], "") for col in metric_columns],
    )


@require_GET
@login_required
def run_detail(request, run_id: int):
    """A run's steps in order with their artifacts; live via /ws/runs/<id>/."""
    run = _visible_run(request, run_id)
    renditions_prepare_missing(run_id=run.pk)  # backfilled artifacts render when first viewed
    steps = run_page_steps(user=request.user, run=run, inline_previews=settings.RUN_PAGE_INLINE_PREVIEWS)
    artifact_base = reverse("runs:artifact", args=[run.pk, 0]).removesuffix("0/")
    for step in steps:
        step.rows_html = mark_safe(
            "".join(_artifact_row_html(request, run, row, artifact_base) for row in step.rows)
        )
    row_template = mark_safe(_artifact_row_html(request, run, _TEMPLATE_ROW, artifact_base))
    return render(request, "runs/run_detail.html", {"run": run, "steps": steps, "row_template": row_template})


# The empty artifact (id 0) whose row the run page puts in a <template>: run_detail.js
# clones it for artifacts that arrive live, so the row markup has one source.
_TEMPLATE_ROW = SimpleNamespace(
    id=0,
    key="",
    name="",
    kind="",
    size=None,
    event_time=None,
    signature="",
    rendition_status="",
    preview=None,
)


def _artifact_row_html(request, run, row, artifact_base: str) -> str:
    """One artifact line of the run page, and (for ``_TEMPLATE_ROW``) the template that
    run_detail.js fills for artifacts that arrive live. Built here with plain escaping,
    not with a template include (or format_html) per artifact: a 1,000-artifact page
    renders several times faster (docs/performance.md)."""
    url = f"{artifact_base}{row.id}/"
    when = row.event_time
    if row.preview is not None:
        preview = (
            '<div class="preview" data-preview>'
            + render_to_string(
                "runs/_artifact_preview.html", {"artifact": row.preview, "run": run}, request=request
            )
            + "</div>"
        )
    else:
        # Loads when scrolled into view (run_detail.js); the download works meanwhile.
        preview = f'<div class="preview" data-preview data-lazy><a href="{url}download">Download</a></div>'
    return (
        f'<li class="artifact" id="artifact-{row.id}" data-artifact-id="{row.id}" data-key="{esc(row.key)}" '
        f'data-sig="{esc(row.signature)}"><div class="artifact-head">'
        f'<a class="name" href="{url}" data-f="name">{esc(row.name)}</a>'
        f'<span class="kind" data-f="kind">{esc(row.kind)}</span>'
        f'<span class="size" data-f="size">{human_bytes(row.size)}</span>'
        f'<time data-f="event_time" datetime="{when.isoformat() if when else ""}">'
        f"{when.strftime('%H:%M:%S') if when else ''}</time>"
        f'<span class="rstatus" data-f="rstatus">{esc(row.rendition_status)}</span></div>{preview}</li>\n'
    )


def _visible_artifact(request, run_id: int, artifact_id: int, *, renditions: bool = False):
    get = artifact_get_for_preview if renditions else artifact_get_visible
    artifact = get(user=request.user, run_id=run_id, artifact_id=artifact_id)
    if artifact is None:
        raise Http404("No such artifact.")
    return artifact


@require_GET
@login_required
def artifact_detail(request, run_id: int, artifact_id: int):
    artifact = _visible_artifact(request, run_id, artifact_id, renditions=True)
    renditions_prepare_missing(run_id=artifact.run_id)
    recipes = recipes_for_artifact(user=request.user, artifact=artifact)
    return render(
        request, "runs/artifact_detail.html", {"artifact": artifact, "run": artifact.run, "recipes": recipes}
    )


@require_GET
@login_required
def artifact_preview(request, run_id: int, artifact_id: int):
    """The preview fragment the run page swaps in when an artifact's renditions change."""
    artifact = _visible_artifact(request, run_id, artifact_id, renditions=True)
    return render(request, "runs/_artifact_preview.html", {"artifact": artifact, "run": artifact.run})


@require_GET
@login_required
def artifact_download(request, run_id: int, artifact_id: int):
    """The object, streamed from object storage through the portal after the access check."""
    artifact = _visible_artifact(request, run_id, artifact_id)
    if artifact.deleted:
        return HttpResponse(
            "This object was removed from its bucket.", status=410, content_type="text/plain; charset=utf-8"
        )
    try:
        stream = object_stream(
            bucket=artifact.bucket.name,
            key=artifact.key,
            store=artifact.bucket.store,
            chunk_size=settings.DOWNLOAD_CHUNK_BYTES,
        )
    except ObjectGone:
        return HttpResponse(
            "This object is no longer in its bucket.", status=410, content_type="text/plain; charset=utf-8"
        )
    response = StreamingHttpResponse(stream, content_type=artifact.content_type or "application/octet-stream")
    response["Content-Disposition"] = content_disposition_header(True, artifact.name.rsplit("/", 1)[-1])
    if stream.length is not None:
        response["Content-Length"] = str(stream.length)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    return response
