"""Recipe pages and API (docs/recipes.md). Thin: parse, ask runs.selectors.recipes /
runs.selectors.access, call runs.services.recipes, render.

With RECIPES_ENABLED off every URL here answers 404. Creating and editing
need ``runs.author_recipe`` (403 otherwise, pages and API alike); running
needs the recipe shared with the user and the artifact visible (404
otherwise, as for anything the user may not see).
"""

from __future__ import annotations

import json

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseForbidden, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from runs.forms import RecipeForm
from runs.models import Bucket
from runs.selectors.access import artifact_get_visible
from runs.selectors.recipes import (
    recipe_editable_by,
    recipe_get_editable,
    recipe_get_runnable,
    recipe_last_runs,
    recipes_enabled,
    recipes_listed_for,
    user_may_author,
)
from runs.services import recipes as service


def _enabled():
    if not recipes_enabled():
        raise Http404("Recipes are turned off.")


def _form(request, data=None, initial=None):
    groups = Group.objects.all() if request.user.is_superuser else request.user.groups.all()
    return RecipeForm(
        data,
        initial=initial,
        group_choices=[(str(g.pk), g.name) for g in groups.order_by("name")],
        bucket_choices=[(str(b.pk), b.name) for b in Bucket.objects.order_by("name")],
    )


def _save_from_form(request, form, recipe=None):
    d = form.cleaned_data
    allowed_groups = {c for c, _ in form.fields["groups"].choices}
    return service.recipe_save(
        user=request.user,
        recipe=recipe,
        name=d["name"],
        source=d["source"],
        kinds=d["kinds"],
        name_patterns=d["name_patterns"],
        group_ids=[g for g in d["groups"] if g in allowed_groups],
        auto_bucket_ids=d["auto_buckets"],
        enabled=d["enabled"],
    )


@require_http_methods(["GET"])
@login_required
def recipe_list(request):
    _enabled()
    recipes = recipes_listed_for(user=request.user)
    return render(
        request,
        "runs/recipes/list.html",
        {"recipes": recipes, "may_author": user_may_author(user=request.user)},
    )


@require_http_methods(["GET", "POST"])
@login_required
def recipe_new(request):
    _enabled()
    if not user_may_author(user=request.user):
        return HttpResponseForbidden("You may not create recipes.")
    form = _form(request, request.POST or None, initial={"enabled": True, "source": STARTER_SOURCE})
    if request.method == "POST" and form.is_valid():
        try:
            recipe = _save_from_form(request, form)
        except ValidationError as exc:
            form.add_error("source", exc)
        else:
            return redirect("runs:recipe_edit", recipe.pk)
    return render(request, "runs/recipes/edit.html", {"form": form, "recipe": None})


@require_http_methods(["GET", "POST"])
@login_required
def recipe_edit(request, recipe_id: int):
    """The editor: source, settings, "run on this artifact" (?run=&artifact=), last runs."""
    _enabled()
    recipe = recipe_get_editable(user=request.user, recipe_id=recipe_id)
    if recipe is None:
        if recipe_get_runnable(user=request.user, recipe_id=recipe_id) is not None:
            return HttpResponseForbidden("You may run this recipe, not edit it.")
        raise Http404("No such recipe.")
    initial = {
        "name": recipe.name,
        "source": recipe.source,
        "kinds": ", ".join(recipe.kinds),
        "name_patterns": ", ".join(recipe.name_patterns),
        "groups": [str(g) for g in recipe.groups.values_list("pk", flat=True)],
        "auto_buckets": [str(b) for b in recipe.auto_buckets.values_list("pk", flat=True)],
        "enabled": recipe.enabled,
    }
    form = _form(request, request.POST or None, initial=initial)
    saved = False
    if request.method == "POST" and form.is_valid():
        try:
            recipe = _save_from_form(request, form, recipe)
            saved = True
        except ValidationError as exc:
            form.add_error("source", exc)
    target = None
    run_id, artifact_id = request.GET.get("run"), request.GET.get("artifact")
    if run_id and artifact_id and run_id.isdigit() and artifact_id.isdigit():
        target = artifact_get_visible(user=request.user, run_id=int(run_id), artifact_id=int(artifact_id))
    return render(
        request,
        "runs/recipes/edit.html",
        {
            "form": form,
            "recipe": recipe,
            "runs": recipe_last_runs(recipe=recipe),
            "target": target,
            "saved": saved,
        },
    )


@require_POST
@login_required
def recipe_run(request, recipe_id: int, run_id: int, artifact_id: int):
    """Run a recipe on an artifact (a button on the artifact page and in the editor)."""
    _enabled()
    recipe = recipe_get_runnable(user=request.user, recipe_id=recipe_id)
    artifact = artifact_get_visible(user=request.user, run_id=run_id, artifact_id=artifact_id)
    if recipe is None or artifact is None:
        raise Http404("No such recipe or artifact.")
    try:
        service.recipe_run_request(
            recipe=recipe, artifact=artifact, user=request.user, force=request.POST.get("force") == "1"
        )
    except (PermissionDenied, ValidationError) as exc:
        return HttpResponseForbidden(str(exc))
    back = request.POST.get("next") or reverse("runs:artifact", args=[run_id, artifact_id])
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("runs:artifact", args=[run_id, artifact_id])
    return redirect(back)


# --- JSON API ---------------------------------------------------------------------------


def _json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object.")
    return body


def _recipe_json(recipe) -> dict:
    return {
        "id": recipe.pk,
        "name": recipe.name,
        "version": recipe.version,
        "enabled": recipe.enabled,
        "kinds": recipe.kinds,
        "name_patterns": recipe.name_patterns,
    }


def _api_save(request, recipe=None):
    try:
        body = _json_body(request)
        recipe = service.recipe_save(
            user=request.user,
            recipe=recipe,
            name=str(body.get("name", "")),
            source=str(body.get("source", "")),
            kinds=body.get("kinds") or [],
            name_patterns=body.get("name_patterns") or [],
            group_ids=[int(g) for g in body.get("groups") or []],
            auto_bucket_ids=[int(b) for b in body.get("auto_buckets") or []],
            enabled=bool(body.get("enabled", True)),
        )
    except PermissionDenied as exc:
        return JsonResponse({"error": str(exc)}, status=403)
    except (ValidationError, TypeError, ValueError) as exc:
        return JsonResponse({"error": "; ".join(getattr(exc, "messages", [str(exc)]))}, status=400)
    return JsonResponse(_recipe_json(recipe), status=201 if recipe is not None else 200)


@require_POST
@login_required
def api_recipe_create(request):
    _enabled()
    if not user_may_author(user=request.user):
        return JsonResponse({"error": "You may not create recipes."}, status=403)
    return _api_save(request)


@require_POST
@login_required
def api_recipe_update(request, recipe_id: int):
    _enabled()
    recipe = recipe_get_runnable(user=request.user, recipe_id=recipe_id) or recipe_get_editable(
        user=request.user, recipe_id=recipe_id
    )
    if recipe is None:
        return JsonResponse({"error": "No such recipe."}, status=404)
    if not recipe_editable_by(user=request.user, recipe=recipe):
        return JsonResponse({"error": "You may not edit this recipe."}, status=403)
    return _api_save(request, recipe)


@require_POST
@login_required
def api_recipe_run(request, recipe_id: int):
    """POST {"run": id, "artifact": id} → {"queued": bool, "recipe_run": id|null}."""
    _enabled()
    try:
        body = _json_body(request)
        run_id, artifact_id = int(body.get("run")), int(body.get("artifact"))
    except (ValidationError, TypeError, ValueError):
        return JsonResponse({"error": 'Give {"run": id, "artifact": id}.'}, status=400)
    recipe = recipe_get_runnable(user=request.user, recipe_id=recipe_id)
    artifact = artifact_get_visible(user=request.user, run_id=run_id, artifact_id=artifact_id)
    if recipe is None or artifact is None:
        return JsonResponse({"error": "No such recipe or artifact."}, status=404)
    try:
        queued = service.recipe_run_request(recipe=recipe, artifact=artifact, user=request.user)
    except (PermissionDenied, ValidationError) as exc:
        return JsonResponse({"error": str(exc)}, status=409)
    return JsonResponse({"queued": queued is not None, "recipe_run": queued.pk if queued else None})


STARTER_SOURCE = '''"""A recipe: render(path, meta) returns what to show (docs/recipes.md)."""
import pandas as pd
from pipelens import Table


def render(path: str, meta: dict):
    df = pd.read_csv(path, nrows=1000)
    return Table(list(df.columns), df.head(50).values.tolist())
'''
