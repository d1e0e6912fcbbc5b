"""Recipes a user may run, edit or see the logs of (docs/recipes.md). Reads only.

Rules: creating and editing needs the ``runs.author_recipe`` permission (and,
to edit, being the recipe's owner or a superuser). Running needs the recipe
enabled and shared with one of the user's groups (owners and superusers
always may), and the artifact visible to the user (``runs.selectors.access``).
Logs of runs (stdout, stderr, tracebacks) are shown to whoever may edit.
"""

from __future__ import annotations

import fnmatch
import posixpath

from django.conf import settings
from django.db.models import Q, QuerySet

from runs.models import Artifact, Recipe, RecipeRun

AUTHOR_PERMISSION = "runs.author_recipe"


def recipes_enabled() -> bool:
    return bool(settings.RECIPES_ENABLED)


def user_may_author(*, user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(AUTHOR_PERMISSION))


def recipe_editable_by(*, user, recipe: Recipe) -> bool:
    return user_may_author(user=user) and (user.is_superuser or recipe.owner_id == user.pk)


def recipes_runnable_by(*, user) -> QuerySet[Recipe]:
    """Enabled recipes shared with ``user`` (owner, a group of theirs, or a superuser)."""
    if not user or not user.is_authenticated or not user.is_active:
        return Recipe.objects.none()
    base = Recipe.objects.filter(enabled=True)
    if user.is_superuser:
        return base
    return base.filter(Q(owner=user) | Q(groups__user=user)).distinct()


def recipes_listed_for(*, user) -> QuerySet[Recipe]:
    """What the recipe list shows: runnable recipes, and (disabled too) the user's own."""
    if not user or not user.is_authenticated:
        return Recipe.objects.none()
    if user.is_superuser:
        return Recipe.objects.all()
    return Recipe.objects.filter(
        Q(pk__in=recipes_runnable_by(user=user).values("pk")) | Q(owner=user)
    ).distinct()


def recipe_applies(*, recipe: Recipe, kind: str, name: str) -> bool:
    """Whether ``recipe`` applies to an artifact of this kind and name."""
    base = posixpath.basename(name)
    if kind in (recipe.kinds or []):
        return True
    return any(fnmatch.fnmatch(base, p) or fnmatch.fnmatch(name, p) for p in (recipe.name_patterns or []))


def recipes_for_artifact(*, user, artifact: Artifact) -> list[Recipe]:
    """Runnable recipes that apply to ``artifact`` (already found through the access check)."""
    if not recipes_enabled():
        return []
    return [
        r
        for r in recipes_runnable_by(user=user)
        if recipe_applies(recipe=r, kind=artifact.kind, name=artifact.name)
    ]


def recipe_get_runnable(*, user, recipe_id: int) -> Recipe | None:
    return recipes_runnable_by(user=user).filter(pk=recipe_id).first()


def recipe_get_editable(*, user, recipe_id: int) -> Recipe | None:
    recipe = Recipe.objects.filter(pk=recipe_id).first()
    if recipe is None or not recipe_editable_by(user=user, recipe=recipe):
        return None
    return recipe


def recipe_last_runs(*, recipe: Recipe, limit: int = 20) -> list[RecipeRun]:
    return list(RecipeRun.objects.filter(recipe=recipe).select_related("artifact", "artifact__run")[:limit])


def recipes_auto_for(*, bucket_id: int, kind: str, name: str) -> list[Recipe]:
    """Enabled recipes set to run by themselves on new artifacts of this bucket that match."""
    return [
        r
        for r in Recipe.objects.filter(enabled=True, auto_buckets__id=bucket_id).distinct()
        if recipe_applies(recipe=r, kind=kind, name=name)
    ]
