"""The run page (HTML): rows of every artifact, model instances for inline previews."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Prefetch, prefetch_related_objects

from runs.models import Artifact, Rendition, Run, Step
from runs.selectors.access import artifact_get_visible
from runs.selectors.references import references_attach
from runs.selectors.viewers import renditions_hide_foreign


def _current_renditions() -> Prefetch:
    # Prefetched into ``artifact.renditions.all()``: the preview partial may
    # use it freely, at no query per artifact, and sees the current etag only.
    return Prefetch(
        "renditions", queryset=Rendition.objects.filter(etag=F("artifact__etag")).order_by("position")
    )


def _signature(etag: str, renditions: list[tuple[int, str]]) -> str:
    return f"{etag}|{','.join(f'{rid}:{status}' for rid, status in renditions)}"


@dataclass(slots=True)
class ArtifactRow:
    """One line of the run page; ``preview`` is a model instance for inline previews only."""

    id: int
    step_id: int
    key: str
    name: str
    kind: str
    size: int | None
    event_time: datetime
    signature: str
    rendition_status: str
    preview: Artifact | None = None


def run_page_steps(*, user, run: Run, inline_previews: int) -> list[Step]:
    """Steps in order, each with ``rows`` (ArtifactRow) of its live artifacts.

    The first ``inline_previews`` rows carry a model instance with renditions
    prefetched, for the preview partial; the others load their preview later.
    Six queries whatever the number of artifacts.
    """
    steps = list(Step.objects.filter(run=run).order_by("first_event_at", "name"))
    rows = (
        Artifact.objects.filter(run=run, deleted=False)
        .order_by("key")
        .values_list("id", "step_id", "key", "name", "kind", "size", "event_time", "etag")
    )
    renditions: dict[int, list[tuple[int, str]]] = {}
    for artifact_id, rid, status in (
        Rendition.objects.filter(artifact__run=run, artifact__deleted=False, etag=F("artifact__etag"))
        .order_by("artifact_id", "position")
        .values_list("artifact_id", "id", "status")
    ):
        renditions.setdefault(artifact_id, []).append((rid, status))
    by_step: dict[int, list[ArtifactRow]] = {}
    for aid, step_id, key, name, kind, size, event_time, etag in rows:
        rs = renditions.get(aid, [])
        by_step.setdefault(step_id, []).append(
            ArtifactRow(
                id=aid,
                step_id=step_id,
                key=key,
                name=name,
                kind=kind,
                size=size,
                event_time=event_time,
                signature=_signature(etag, rs),
                rendition_status=rs[0][1] if rs else "new",
            )
        )
    ordered = [row for step in steps for row in by_step.get(step.pk, [])]
    inline = {row.id: row for row in ordered[: max(inline_previews, 0)]}
    if inline:
        models = list(Artifact.objects.filter(pk__in=list(inline)).prefetch_related(_current_renditions()))
        for artifact in models:
            artifact.run = run
            artifact.bucket = run.bucket
            renditions_hide_foreign(user=user, renditions=artifact.renditions.all())
            inline[artifact.pk].preview = artifact
        references_attach(user=user, artifacts=models)
    for step in steps:
        step.rows = by_step.get(step.pk, [])
    return steps


def artifact_get_for_preview(*, user, run_id: int, artifact_id: int) -> Artifact | None:
    """Like ``artifact_get_visible``, with the current renditions prefetched and the references
    the user may see attached (``referenced_by``, ``references_out``)."""
    artifact = artifact_get_visible(user=user, run_id=run_id, artifact_id=artifact_id)
    if artifact is not None:
        prefetch_related_objects([artifact], _current_renditions())
        renditions_hide_foreign(user=user, renditions=artifact.renditions.all())
        references_attach(user=user, artifacts=[artifact])
    return artifact
