"""Renditions behind the viewers' own endpoints (docs/viewers.md).

A rendition is only ever reached through its visible artifact
(``runs.selectors.access.artifact_get_visible``, which asks ``runs_visible_to``).
"""

from __future__ import annotations

from runs.models import Rendition
from runs.selectors.access import artifact_get_visible


def rendition_get_visible(*, user, run_id: int, artifact_id: int, rendition_id: int) -> Rendition | None:
    """The rendition, if its artifact belongs to a run ``user`` may see."""
    artifact = artifact_get_visible(user=user, run_id=run_id, artifact_id=artifact_id)
    if artifact is None:
        return None
    rendition = Rendition.objects.filter(pk=rendition_id, artifact_id=artifact.pk).first()
    if rendition is not None:
        rendition.artifact = artifact
    return rendition
