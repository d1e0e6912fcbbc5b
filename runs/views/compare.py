"""The compare page (``/compare/?runs=12,15,19``) and its merged-table rows (docs/compare.md).

Thin: parse the URL, ask runs.selectors.compare, render. A malformed ``runs`` or
``pair`` answers 400 with the reason on the page; any run the user may not see
answers 404, exactly like a run that does not exist.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from runs.compare_match import CompareInputError, parse_pairs, parse_run_ids
from runs.rendering.base import RenderError, StorageUnavailable
from runs.rendering.merged_table import merged_page
from runs.rendering.readback import Busy
from runs.selectors.compare import RunsNotFound, comparison_load, merged_table_parts
from runs.services.renditions import renditions_enqueue
from runs.views.compare_html import image_grid_html, names_table_html
from runs.views.viewers import _int, _json_error


def compare_url(run_ids, pairs: dict[tuple[int, int], str]) -> str:
    """The shareable URL of a comparison (runs in order, re-pairings sorted)."""
    query = [("runs", ",".join(str(r) for r in run_ids))]
    query += [("pair", f"{run}:{aid}={key}") for (run, aid), key in sorted(pairs.items())]
    return reverse("runs:compare") + "?" + urlencode(query)


@require_GET
@login_required
def compare_runs(request):
    """Runs side by side; live via /ws/compare/?runs=…; ``?fragment=sections`` for the live refresh."""
    try:
        run_ids = parse_run_ids(request.GET.getlist("runs"))
        pairs = parse_pairs(request.GET.getlist("pair"), run_ids=run_ids)
        repair = _repair_from_form(request, run_ids)
        if repair is not None:
            pairs.pop(repair[0], None)
            if repair[1]:
                pairs[repair[0]] = repair[1]
            comparison_load(user=request.user, run_ids=run_ids, pairs=pairs)  # validates
            return HttpResponseRedirect(compare_url(run_ids, pairs))
        comparison = comparison_load(user=request.user, run_ids=run_ids, pairs=pairs)
        if comparison.unrendered:
            # Render on first view, as the run page does (renditions_prepare_missing): backfilled
            # artifacts are stored without rendering. Known from the rows already read.
            renditions_enqueue(artifact_ids=comparison.unrendered)
    except CompareInputError as exc:
        return render(request, "runs/compare.html", {"error": str(exc)}, status=400)
    except RunsNotFound:
        raise Http404("No such run.") from None
    context = {
        "c": comparison,
        "matching_html": names_table_html(
            comparison, comparison.rows, first="Match key", table_class="matching"
        ),
        "images_html": image_grid_html(comparison),
        "run_ids": ",".join(str(r) for r in run_ids),
        "share_url": compare_url(run_ids, pairs),
        "pair_values": [f"{run}:{aid}={key}" for (run, aid), key in sorted(pairs.items())],
    }
    if request.GET.get("fragment") == "sections":
        return render(request, "runs/_compare_sections.html", context)
    return render(request, "runs/compare.html", context)


def _repair_from_form(request, run_ids) -> tuple[tuple[int, int], str] | None:
    """The re-pair form's choice (``repair_artifact=<run>:<artifact>``, ``repair_to=<key>``, empty
    to undo), or None when the form was not used."""
    raw = request.GET.get("repair_artifact")
    if raw is None:
        return None
    target = request.GET.get("repair_to", "").strip()
    probe = parse_pairs([f"{raw}={target or '-'}"], run_ids=run_ids)
    (where,) = probe
    return where, target


@require_GET
@login_required
def merged_table_rows(request):
    """JSON rows of a merged table: ?tables=<run>:<artifact>:<rendition>,…&start=&count=&sort=&desc=1.

    Rows are ``[run id, *cells]``; ``sort`` counts the tables' columns (not the run column).
    202 ``{"pending": true}`` while sorted copies are built, as for a run's own table."""
    try:
        parts = merged_table_parts(user=request.user, raw=request.GET.get("tables", ""))
    except CompareInputError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    except RunsNotFound:
        raise Http404("No such table.") from None
    try:
        page = merged_page(
            parts=parts,
            start=_int(request.GET.get("start"), 0),
            count=_int(request.GET.get("count"), 50),
            sort=_int(request.GET.get("sort"), None),
            descending=request.GET.get("desc") == "1",
        )
    except (RenderError, StorageUnavailable, Busy) as exc:
        return _json_error(exc)
    return JsonResponse(page, status=202 if page.get("pending") else 200)
