"""Renditions behind the viewers' own endpoints (docs/viewers.md).

A rendition is only ever reached through its visible artifact
(``runs.selectors.access.artifact_get_visible``, which asks ``runs_visible_to``).
"""

from __future__ import annotations

from collections.abc import Iterable

from runs.models import Rendition
from runs.selectors.access import access_scope_for, artifact_get_visible, sources_visible

HIDDEN_SOURCE = (
    "This preview shows data from a file of another run that you may not see, so it is not shown to you."
)


def renditions_hide_foreign(*, user, renditions: Iterable[Rendition]) -> list[Rendition]:
    """Blank, in memory, the renditions built from another run's files that ``user`` may not
    see (``payload["cross_run_sources"]``, set by the rendition service): they show as failed
    with a reason. Returns the hidden ones. Grants change after rendering; this is
    decided for each reader, each time."""
    hidden = []
    scope = None
    for rendition in renditions:
        sources = (rendition.payload or {}).get("cross_run_sources")
        if not sources:
            continue
        scope = scope or access_scope_for(user=user)
        if not sources_visible(scope=scope, sources=sources):
            rendition.status = Rendition.Status.FAILED
            rendition.payload, rendition.preview_key, rendition.error = {}, "", HIDDEN_SOURCE
            hidden.append(rendition)
    return hidden


def rendition_get_visible(*, user, run_id: int, artifact_id: int, rendition_id: int) -> Rendition | None:
    """The rendition, if its artifact belongs to a run ``user`` may see."""
    artifact = artifact_get_visible(user=user, run_id=run_id, artifact_id=artifact_id)
    if artifact is None:
        return None
    rendition = Rendition.objects.filter(pk=rendition_id, artifact_id=artifact.pk).first()
    if rendition is None or renditions_hide_foreign(user=user, renditions=[rendition]):
        return None
    rendition.artifact = artifact
    return rendition
