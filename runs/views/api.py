"""JSON API: a run's state, for pages recovering from a gap or a reconnect (docs/portal.md#seq)."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from runs.forms import StateQueryForm
from runs.selectors.access import run_get_visible
from runs.selectors.run_state import run_state


@require_GET
def api_run_state(request, run_id: int):
    """``GET /api/runs/<id>/state?since=<seq>``: what a page needs after a gap or a reconnect."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "authentication required"}, status=401)
    form = StateQueryForm(request.GET)
    if not form.is_valid():
        return JsonResponse(
            {"error": "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())}, status=400
        )
    run = run_get_visible(user=request.user, run_id=run_id)
    if run is None:
        return JsonResponse({"error": "no such run"}, status=404)
    return JsonResponse(run_state(run=run, since=form.cleaned_data["since"]))
