"""Recipes: every write (docs/recipes.md). Saving recipes, asking for a run, running it.

A run is asked for by a user (``recipe_run_request``) or by ingest for the
recipes set to run on new artifacts of a bucket (``on_changes``). It creates
a ``RecipeRun`` and the artifact version's recipe ``Rendition`` (pending),
and after commit queues ``runs.recipe_run`` on RENDER_QUEUE. Running it takes
three tasks, so that the sandbox worker needs neither the database nor the
object store (docs/deploy.md#network-policy):

1. ``recipe_run_dispatch`` (render worker): reads the artifact's bytes, claims
   the run and sends the job to SANDBOX_QUEUE (runs/sandbox/task.py);
2. the sandbox worker runs it in the sandbox (runs/sandbox/) and sends the
   bounded result back to the render queue;
3. ``recipe_run_store`` (render worker) stores the output as the rendition
   (ready, or failed with the exit reason) and the logs on the run;
   ``recipe_run_deadline`` fails a run whose result never came back.

Outputs are cached per (recipe version, artifact etag): asking again for a
version that has a final rendition queues nothing.

Recipe renditions (viewer ``recipe``, position RECIPE_POSITION + recipe id)
are written only here; the built-in render path leaves them alone.
"""

from __future__ import annotations

import base64
import json
import logging
import posixpath
import time

from celery import current_app
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from runs.kinds import Viewer
from runs.models import Artifact, Recipe, RecipeRun, Rendition
from runs.rendering.base import RenderError, StorageUnavailable
from runs.sandbox.task import (
    RECIPE_RESULT_TASK,
    RECIPE_SANDBOX_TASK,
    SANDBOX_JOB_EXPIRES_S,
    SANDBOX_TIME_LIMIT_S,
    sandbox_job,
    sandbox_job_run,
)
from runs.sandbox.vega_lite import vega_lite_document
from runs.selectors.recipes import recipe_applies, recipe_editable_by, recipes_auto_for, user_may_author
from runs.services.changes import Changes, changes_on_commit, runs_touch
from runs.storage import ObjectSource, preview_prefix, preview_put
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.recipes")

RECIPE_RUN_TASK = "runs.recipe_run"  # claim + read + send to the sandbox (RENDER_QUEUE)
RECIPE_DEADLINE_TASK = "runs.recipe_deadline"  # fail a run whose result never came (RENDER_QUEUE)
__all__ = ["RECIPE_RESULT_TASK", "RECIPE_SANDBOX_TASK"]  # named here for runs/tasks.py
RECIPE_POSITION = 1000
MAX_TABLE_ROWS_SHOWN = 1000


class RecipesDisabled(PermissionDenied):
    pass


def _require_enabled() -> None:
    if not settings.RECIPES_ENABLED:
        raise RecipesDisabled("Recipes are turned off (RECIPES_ENABLED).")


def _announce(artifact_rows) -> None:
    run_ids = {a.run_id for a in artifact_rows}
    runs_touch(run_ids=run_ids)
    changes_on_commit(run_ids=run_ids, artifact_ids={a.pk for a in artifact_rows})


# --- saving ---------------------------------------------------------------------------


def _clean_list(values) -> list[str]:
    if isinstance(values, str):
        values = values.replace(",", "\n").splitlines()
    return [str(v).strip() for v in (values or []) if str(v).strip()][:50]


def _validate_source(source: str) -> None:
    if not source.strip():
        raise ValidationError("The source is empty.")
    if len(source) > 200_000:
        raise ValidationError("The source is longer than 200,000 characters.")
    try:
        compile(source, "recipe.py", "exec")  # syntax only; it never runs here
    except SyntaxError as exc:
        raise ValidationError(f"Syntax error on line {exc.lineno}: {exc.msg}") from exc


@transaction.atomic
def recipe_save(
    *,
    user,
    recipe: Recipe | None = None,
    name: str,
    source: str,
    kinds=(),
    name_patterns=(),
    group_ids=(),
    auto_bucket_ids=(),
    enabled: bool = True,
) -> Recipe:
    """Create (``recipe`` None) or edit a recipe. Needs ``runs.author_recipe``; editing also
    needs being its owner (or a superuser). Raises PermissionDenied or ValidationError."""
    _require_enabled()
    if recipe is None:
        if not user_may_author(user=user):
            raise PermissionDenied("You may not create recipes (permission runs.author_recipe).")
        recipe = Recipe(owner=user)
    elif not recipe_editable_by(user=user, recipe=recipe):
        raise PermissionDenied("You may not edit this recipe.")
    name = (name or "").strip()
    if not name:
        raise ValidationError("A recipe needs a name.")
    _validate_source(source)
    if recipe.pk and recipe.source != source:
        recipe.version += 1
    recipe.name, recipe.source = name[:200], source
    recipe.kinds, recipe.name_patterns = _clean_list(kinds), _clean_list(name_patterns)
    recipe.enabled = bool(enabled)
    recipe.save()
    recipe.groups.set([int(g) for g in group_ids])
    recipe.auto_buckets.set([int(b) for b in auto_bucket_ids])
    return recipe


# --- asking for a run -----------------------------------------------------------------


def _position(recipe: Recipe) -> int:
    return RECIPE_POSITION + recipe.pk


@transaction.atomic
def recipe_run_request(
    *, recipe: Recipe, artifact: Artifact, user=None, force: bool = False
) -> RecipeRun | None:
    """Queue ``recipe`` on ``artifact``'s current version. The caller has decided access
    (runs.selectors.recipes and .access); ``user`` None is ingest's automatic run.

    Returns the new run, or None when the version already has this recipe version's
    output (the cache) and ``force`` is false.
    """
    _require_enabled()
    if not recipe.enabled:
        raise PermissionDenied("This recipe is disabled.")
    artifact = Artifact.objects.select_for_update().get(pk=artifact.pk)
    if artifact.deleted:
        raise ValidationError("This object was removed from its bucket.")
    position = _position(recipe)
    current = Rendition.objects.filter(artifact=artifact, etag=artifact.etag, position=position).first()
    if (
        current is not None
        and not force
        and current.payload.get("recipe_version") == recipe.version
        and current.status in (Rendition.Status.READY, Rendition.Status.FAILED, Rendition.Status.PENDING)
    ):
        return None
    run = RecipeRun.objects.create(
        recipe=recipe,
        recipe_version=recipe.version,
        artifact=artifact,
        etag=artifact.etag,
        requested_by=user if user is not None and user.is_authenticated else None,
    )
    Rendition.objects.update_or_create(
        artifact=artifact,
        etag=artifact.etag,
        position=position,
        defaults={
            "viewer": Viewer.RECIPE,
            "title": recipe.name[:500],
            "status": Rendition.Status.PENDING,
            "payload": {"recipe_id": recipe.pk, "recipe_version": recipe.version, "recipe_run": run.pk},
            "preview_key": "",
            "error": "",
        },
    )
    _announce([artifact])
    transaction.on_commit(
        lambda: current_app.send_task(
            RECIPE_RUN_TASK, args=[run.pk], queue=settings.RENDER_QUEUE, expires=3600
        )
    )
    return run


def on_changes(changes: Changes) -> None:
    """Change listener (runs.apps): run the recipes set to run on new artifacts of their buckets."""
    if not changes.ingested or not changes.artifact_ids or not settings.RECIPES_ENABLED:
        return
    try:
        if not Recipe.objects.filter(enabled=True, auto_buckets__isnull=False).exists():
            return
        for artifact in Artifact.objects.filter(pk__in=list(changes.artifact_ids), deleted=False):
            for recipe in recipes_auto_for(
                bucket_id=artifact.bucket_id, kind=artifact.kind, name=artifact.name
            ):
                recipe_run_request(recipe=recipe, artifact=artifact)
    except Exception as exc:  # a broker or database hiccup must not stop ingestion
        log_event(logger, "recipe_auto_enqueue_failed", level=logging.WARNING, error=repr(exc)[:200])


# --- running: claim and read here, the recipe in the sandbox worker, store here ---------


def _deadline_hop_s() -> float:
    # A countdown longer than the broker's visibility timeout gets the message handed out
    # again meanwhile (Redis); hop in shorter steps instead (recipe_run_deadline).
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    return max(10.0, float(visibility) - 60)


def _send_deadline(*, run_id: int, deadline_at: float) -> None:
    countdown = max(0.0, min(deadline_at - time.time(), _deadline_hop_s()))
    current_app.send_task(
        RECIPE_DEADLINE_TASK,
        kwargs={"run_id": run_id, "deadline_at": deadline_at},
        queue=settings.RENDER_QUEUE,
        countdown=countdown,
    )


@transaction.atomic
def _claim(run_id: int, *, job: dict | None = None) -> RecipeRun | None:
    """QUEUED → RUNNING (its rendition: rendering). With ``job``, after commit: the job to the
    sandbox worker, and the deadline by which its result must be back."""
    # Only the run's row is locked (of=self): a FOR UPDATE over the joined rows would lock
    # the artifact and its pipeline run too, in an order that deadlocks with
    # recipe_run_request (artifact, then runs_touch) on the same artifact.
    run = (
        RecipeRun.objects.select_for_update(of=("self",))
        .select_related("recipe", "artifact", "artifact__bucket", "artifact__run")
        .filter(pk=run_id)
        .first()
    )
    if run is None or run.status != RecipeRun.Status.QUEUED:
        return None  # a redelivered message: nothing to do
    run.status = RecipeRun.Status.RUNNING
    run.save(update_fields=["status"])
    Rendition.objects.filter(
        artifact_id=run.artifact_id, etag=run.etag, position=_position(run.recipe), payload__recipe_run=run.pk
    ).update(status=Rendition.Status.RENDERING)
    _announce([run.artifact])
    if job is not None:
        deadline_at = time.time() + SANDBOX_JOB_EXPIRES_S + SANDBOX_TIME_LIMIT_S + 60

        def send() -> None:
            current_app.send_task(
                RECIPE_SANDBOX_TASK, args=[job], queue=settings.SANDBOX_QUEUE, expires=SANDBOX_JOB_EXPIRES_S
            )
            _send_deadline(run_id=run.pk, deadline_at=deadline_at)

        transaction.on_commit(send)
    return run


def _read_job(run: RecipeRun) -> dict:
    """The sandbox job of a run: its source, the artifact's bytes (at most
    SANDBOX_INPUT_MAX_BYTES) and metadata. Raises RenderError, ValueError, StorageUnavailable."""
    artifact, recipe = run.artifact, run.recipe
    if artifact.deleted or artifact.etag != run.etag:
        raise RenderError("The object changed or was removed before the recipe ran.")
    source = ObjectSource(
        artifact.bucket.name,
        artifact.key,
        name=artifact.name,
        size=artifact.size,
        etag=artifact.etag,
        content_type=artifact.content_type,
        store=artifact.bucket.store,
    )
    data = source.read_all(settings.SANDBOX_INPUT_MAX_BYTES, "The file")
    meta = {
        "name": artifact.name,
        "key": artifact.key,
        "bucket": artifact.bucket.name,
        "kind": artifact.kind,
        "size": len(data),
        "etag": artifact.etag,
        "content_type": artifact.content_type,
        "run": artifact.run.name,
    }
    return sandbox_job(
        run_id=run.pk,
        source=recipe.source,
        data=data,
        filename=posixpath.basename(artifact.name),
        meta=meta,
        reply_queue=settings.RENDER_QUEUE,
    )


def recipe_run_dispatch(*, run_id: int) -> str:
    """Claim a queued RecipeRun, read its input and hand it to the sandbox worker (served by
    the render worker, which may read the database and the store; the sandbox worker may not).

    Returns "dispatched", "skipped" (not queued any more: a redelivered message) or the
    run's final status when the input could not be read.
    """
    run = (
        RecipeRun.objects.select_related("recipe", "artifact", "artifact__bucket", "artifact__run")
        .filter(pk=run_id, status=RecipeRun.Status.QUEUED)
        .first()
    )
    if run is None:
        return "skipped"
    try:
        job = _read_job(run)
    except (RenderError, ValueError, StorageUnavailable) as exc:
        claimed = _claim(run_id)
        if claimed is None:
            return "skipped"
        if isinstance(exc, StorageUnavailable):
            msg = f"Object storage could not be read: {exc}"
            return _finish(run=claimed, ok=False, reason="storage", message=msg, error=msg)
        msg = str(exc) or type(exc).__name__
        return _finish(run=claimed, ok=False, reason="input", message=msg, error=msg)
    # Claimed only once the input is in hand: a worker lost while reading leaves the run
    # queued, and the redelivered message (acks_late) starts over.
    return "dispatched" if _claim(run_id, job=job) is not None else "skipped"


def recipe_run_store(*, run_id: int, result: dict) -> str:
    """Store what the sandbox worker sent back for a running RecipeRun (``runs.recipe_result``):
    the output as the rendition, or the failure with its reason; returns the run's status.
    A result for a run that is no longer running (a duplicate, or after its deadline) is dropped."""
    run = (
        RecipeRun.objects.select_related("recipe", "artifact")
        .filter(pk=run_id, status=RecipeRun.Status.RUNNING)
        .first()
    )
    if run is None:
        return "skipped"
    reason, message = str(result.get("reason") or "crashed"), str(result.get("message") or "")
    stored = {
        "reason": reason,
        "message": message,
        "stdout": str(result.get("stdout") or ""),
        "stderr": str(result.get("stderr") or ""),
        "traceback": str(result.get("traceback") or ""),
        "sandbox_mode": str(result.get("sandbox_mode") or ""),
        "duration_ms": result.get("duration_ms"),
    }
    try:
        if reason == "ok":
            payload, preview_key = _output_payload(run=run, output=result.get("output") or {})
            payload["sandbox_mode"] = stored["sandbox_mode"]
            return _finish(run=run, ok=True, payload=payload, preview_key=preview_key, **stored)
        if reason in ("unavailable", "input"):
            return _finish(run=run, ok=False, reason=reason, message=message, error=message)
        return _finish(run=run, ok=False, error=_reason_sentence(reason, message), **stored)
    except (RenderError, ValueError) as exc:
        msg = str(exc) or type(exc).__name__
        return _finish(run=run, ok=False, **{**stored, "message": msg}, error=msg)
    except StorageUnavailable as exc:
        msg = f"Object storage could not be written: {exc}"
        return _finish(run=run, ok=False, **{**stored, "reason": "storage", "message": msg}, error=msg)


def recipe_run_deadline(*, run_id: int, deadline_at: float) -> str:
    """Fail a run still running at ``deadline_at`` (its sandbox job expired unserved, or the
    sandbox worker running it was lost); before then, check again later."""
    run = (
        RecipeRun.objects.select_related("recipe").filter(pk=run_id, status=RecipeRun.Status.RUNNING).first()
    )
    if run is None:
        return "done"
    if time.time() < deadline_at:
        _send_deadline(run_id=run_id, deadline_at=deadline_at)
        return "waiting"
    msg = "No result came back from the sandbox worker (it was lost, or none took the run in time)."
    return _finish(run=run, ok=False, reason="lost", message=msg, error=msg)


def recipe_run_execute(*, run_id: int) -> str:
    """The three steps in this process (bench/recipes.py): dispatch's reading, the sandbox
    job (through JSON, as over the broker), the store. The deployed path is the tasks."""
    run = (
        RecipeRun.objects.select_related("recipe", "artifact", "artifact__bucket", "artifact__run")
        .filter(pk=run_id)
        .first()
    )
    if _claim(run_id) is None:
        return "skipped"
    job = json.loads(json.dumps(_read_job(run)))
    return recipe_run_store(run_id=run_id, result=json.loads(json.dumps(sandbox_job_run(job))))


_REASONS = {
    "timeout": "time limit",
    "cpu": "CPU time limit",
    "memory": "memory limit",
    "exception": "exception",
    "bad_output": "bad output",
    "output_flood": "too much printed",
    "result_too_large": "output too large",
    "processes": "process limit",
    "left_processes": "left processes behind",
    "file_size": "file size limit",
    "crashed": "crashed",
}


def _reason_sentence(reason: str, message: str) -> str:
    return f"Recipe failed ({_REASONS.get(reason, reason)}): {message}"


def _output_payload(*, run: RecipeRun, output: dict) -> tuple[dict, str]:
    """The rendition payload (and preview object) of a recipe's validated output."""
    kind = output.get("type")
    base = {
        "recipe_id": run.recipe_id,
        "recipe_version": run.recipe_version,
        "recipe_run": run.pk,
        "type": kind,
    }
    key = f"{preview_prefix()}/recipes/{run.artifact_id}/{run.recipe_id}-v{run.recipe_version}-{run.pk}"
    if kind == "png":
        data = base64.b64decode(output.get("png_b64", ""), validate=True)
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise ValueError("The recipe's PNG output is not a PNG file.")
        return {**base, "thumb_content_type": "image/png", "bytes": len(data)}, preview_put(
            key + ".png", data, "image/png"
        )["key"]
    if kind == "html":
        html = output.get("html")
        if not isinstance(html, str):
            raise ValueError("The recipe's HTML output is not text.")
        return {**base, "bytes": len(html)}, preview_put(key + ".html", html.encode("utf-8"), "text/html")[
            "key"
        ]
    if kind == "vega_lite":
        spec = output.get("spec")
        if not isinstance(spec, dict):
            raise ValueError("The recipe's Vega-Lite output is not an object.")
        return {**base}, preview_put(key + ".html", vega_lite_document(spec, run.recipe.name), "text/html")[
            "key"
        ]
    if kind == "table":
        header, rows = output.get("header"), output.get("rows")
        if not isinstance(header, list) or not isinstance(rows, list):
            raise ValueError("The recipe's table output is malformed.")
        shown = [
            [("" if c is None else str(c))[:500] for c in row[:200]] for row in rows[:MAX_TABLE_ROWS_SHOWN]
        ]
        return {
            **base,
            "header": [str(h)[:200] for h in header[:200]],
            "rows": shown,
            "row_count": len(rows),
        }, ""
    raise ValueError(f"Unknown output type {kind!r}.")


@transaction.atomic
def _finish(
    *,
    run: RecipeRun,
    ok: bool,
    payload: dict | None = None,
    preview_key: str = "",
    error: str = "",
    reason: str = "",
    message: str = "",
    stdout: str = "",
    stderr: str = "",
    traceback: str = "",
    sandbox_mode: str = "",
    duration_ms: float | None = None,
) -> str:
    def clean(s: str) -> str:
        return (s or "").replace("\x00", "\ufffd")

    # Only a running run ends, once: a duplicate result, or one after the deadline, is dropped.
    current = RecipeRun.objects.select_for_update().filter(pk=run.pk).values_list("status", flat=True).first()
    if current != RecipeRun.Status.RUNNING:
        return current or "skipped"
    run.status = RecipeRun.Status.OK if ok else RecipeRun.Status.FAILED
    run.reason = reason[:40]
    run.message, run.stdout, run.stderr = clean(message)[:5000], clean(stdout), clean(stderr)
    run.traceback, run.sandbox_mode, run.duration_ms = clean(traceback), sandbox_mode, duration_ms
    run.finished_at = timezone.now()
    run.save()
    artifact = Artifact.objects.select_for_update().filter(pk=run.artifact_id).first()
    rows = Rendition.objects.filter(
        artifact_id=run.artifact_id, etag=run.etag, position=_position(run.recipe), payload__recipe_run=run.pk
    )
    if artifact is not None and artifact.etag == run.etag and not artifact.deleted:
        base = {"recipe_id": run.recipe_id, "recipe_version": run.recipe_version, "recipe_run": run.pk}
        rows.update(
            status=Rendition.Status.READY if ok else Rendition.Status.FAILED,
            payload=payload if ok else {**base, "sandbox_mode": sandbox_mode},
            preview_key=preview_key,
            error=clean(error)[:5000],
        )
        _announce([artifact])
    log_event(
        logger,
        "recipe_ran",
        run=run.pk,
        recipe=run.recipe_id,
        artifact=run.artifact_id,
        status=run.status,
        reason=run.reason,
        duration_ms=duration_ms,
    )
    return run.status


def recipe_applies_to(*, recipe: Recipe, artifact: Artifact) -> bool:
    return recipe_applies(recipe=recipe, kind=artifact.kind, name=artifact.name)


# --- starter recipes (setup_demo) --------------------------------------------------------

STARTERS = {
    # file in runs/starter_recipes/: (name, kinds, name patterns)
    "calibration_curve.py": ("Calibration curve", [], ["*predictions*.csv", "*calibration*.csv"]),
    "per_class_metrics.py": ("Per-class precision/recall", ["confusion_matrix"], ["*confusion*.csv"]),
    "column_histogram.py": ("Histogram of a numeric column", ["table"], []),
}


@transaction.atomic
def recipes_install_starters(*, owner) -> list[Recipe]:
    """Create or update the starter recipes (runs/starter_recipes/), owned by ``owner``."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "starter_recipes"
    out = []
    for filename, (name, kinds, patterns) in STARTERS.items():
        source = (folder / filename).read_text(encoding="utf-8")
        recipe = Recipe.objects.filter(name=name, owner=owner).first() or Recipe(name=name, owner=owner)
        if recipe.pk and recipe.source != source:
            recipe.version += 1
        recipe.source, recipe.kinds, recipe.name_patterns, recipe.enabled = source, kinds, patterns, True
        recipe.save()
        out.append(recipe)
    return out
