"""JSON shapes of runs and artifacts: the state API and the pushes share them (docs/portal.md)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db.models import F

from runs.models import Artifact, Rendition, Run, Step
from runs.selectors.runs_list import run_progress_and_metrics


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def run_summary(run: Run) -> dict[str, Any]:
    """The JSON shape of a run in pushes and the state API."""
    return {
        "id": run.pk,
        "name": run.name,
        "pipeline": run.pipeline,
        "namespace": run.namespace,
        "bucket_id": run.bucket_id,
        "bucket": run.bucket.name,
        "run_key": run.run_key,
        "status": run.status,
        "artifact_count": run.artifact_count,
        "seq": run.seq,
        "first_event_at": _iso(run.first_event_at),
        "last_event_at": _iso(run.last_event_at),
    }


def run_summaries(*, run_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Summaries of the given runs (two queries), by run id, with each run's latest
    progress (``{"percent", "message"}`` or None) and metrics (``{name: display}``)
    for the runs list's live progress bar and metric columns."""
    runs = list(Run.objects.select_related("bucket").filter(pk__in=list(run_ids)))
    extras = run_progress_and_metrics(run_ids=[run.pk for run in runs])
    out = {}
    for run in runs:
        extra = extras.get(run.pk, {"progress": None, "metrics": {}})
        out[run.pk] = {
            **run_summary(run),
            "progress": extra["progress"],
            "metrics": {name: m["display"] for name, m in extra["metrics"].items()},
        }
    return out


def _renditions_by_artifact(artifact_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Renditions of each artifact's current etag only (older versions' are history)."""
    rows = (
        Rendition.objects.filter(artifact_id__in=artifact_ids, etag=F("artifact__etag"))
        .order_by("artifact_id", "position")
        .values_list("artifact_id", "id", "position", "viewer", "title", "status", "error")
    )
    found: dict[int, list[dict[str, Any]]] = {}
    for artifact_id, rid, position, viewer, title, status, error in rows:
        found.setdefault(artifact_id, []).append(
            {
                "id": rid,
                "position": position,
                "viewer": viewer,
                "title": title,
                "status": status,
                "error": error,
            }
        )
    return found


_ARTIFACT_FIELDS = (
    "id",
    "run_id",
    "step_id",
    "step__name",
    "step__status",
    "key",
    "name",
    "kind",
    "size",
    "etag",
    "content_type",
    "event_time",
    "deleted",
)


def _artifact_state(row: dict[str, Any], renditions: dict[int, list]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "run_id": row["run_id"],
        "step_id": row["step_id"],
        "step": row["step__name"],
        # Pushed with each artifact so a page shows its step's status as it changes.
        "step_status": row["step__status"],
        "key": row["key"],
        "name": row["name"],
        "kind": row["kind"],
        "size": row["size"],
        "etag": row["etag"],
        "content_type": row["content_type"],
        "event_time": _iso(row["event_time"]),
        "deleted": row["deleted"],
        "renditions": renditions.get(row["id"], []),
    }


def artifact_states(*, artifact_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Current state of the given artifacts (two queries), each with its renditions
    as ``[{id, position, viewer, title, status, error}]``."""
    ids = list(artifact_ids)
    if not ids:
        return []
    rows = list(Artifact.objects.filter(pk__in=ids).order_by("run_id", "key").values(*_ARTIFACT_FIELDS))
    renditions = _renditions_by_artifact([r["id"] for r in rows])
    return [_artifact_state(row, renditions) for row in rows]


def run_steps_with_artifacts(*, run: Run) -> list[dict[str, Any]]:
    """Steps in order, each with its live artifacts' states (three queries in all)."""
    steps = list(
        Step.objects.filter(run=run)
        .order_by("first_event_at", "name")
        .values("id", "name", "status", "first_event_at", "last_event_at", "artifact_count")
    )
    rows = list(Artifact.objects.filter(run=run, deleted=False).order_by("key").values(*_ARTIFACT_FIELDS))
    renditions = _renditions_by_artifact([r["id"] for r in rows])
    by_step: dict[int, list] = {}
    for row in rows:
        by_step.setdefault(row["step_id"], []).append(_artifact_state(row, renditions))
    return [
        {
            **step,
            "first_event_at": _iso(step["first_event_at"]),
            "last_event_at": _iso(step["last_event_at"]),
            "artifacts": by_step.get(step["id"], []),
        }
        for step in steps
    ]


def run_state(*, run: Run, since: int | None = None) -> dict[str, Any]:
    """The run's state for the JSON API and for browsers recovering from a gap.

    Artifacts carry no seq of their own, so ``since`` only saves the payload
    when nothing changed (``since >= seq``): then ``changed`` is false and no
    steps are sent; otherwise the whole state is, and the page replaces its own.
    """
    if since is not None and since >= run.seq:
        return {"run": run_summary(run), "seq": run.seq, "changed": False, "steps": None}
    return {
        "run": run_summary(run),
        "seq": run.seq,
        "changed": True,
        "steps": run_steps_with_artifacts(run=run),
    }
