"""Celery tasks: thin entry points to runs.services.renditions (docs/viewers.md).

Delivery is at least once: ``acks_late`` with ``reject_on_worker_lost``
puts a message back when the worker process dies mid-task, and the service
is idempotent per (artifact, etag), so a second run finishes the job or
does nothing. Only outages — object storage, or the database connection
while storing — are retried, with exponential back-off, a bounded number of
times; everything else ends as a failed rendition with a reason.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from runs.rendering.base import StorageUnavailable
from runs.sandbox import task as sandbox_task  # noqa: F401 - registers runs.recipe_sandbox
from runs.services import recipes as recipes_service
from runs.services import renditions
from runs.services import table_sort as table_sort_service


@shared_task(
    name=renditions.RENDER_BATCH_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True
)
def render_batch(*, artifact_ids: list[int]) -> int:
    """Fan out one ingest batch: pending renditions and one render task per artifact version."""
    return len(renditions.renditions_prepare(artifact_ids=[int(i) for i in artifact_ids]))


# Render work: redelivered if the worker dies, retried on outages, bounded in time.
_RENDER_WORK = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "max_retries": settings.RENDER_MAX_RETRIES,
    "soft_time_limit": settings.RENDER_SOFT_TIME_LIMIT_S,
    "time_limit": settings.RENDER_HARD_TIME_LIMIT_S,
}


def _backoff(task) -> float:
    return settings.RENDER_RETRY_BACKOFF_S * 2**task.request.retries


@shared_task(name=renditions.RENDER_ARTIFACT_TASK, **_RENDER_WORK)
def render_artifact(self, artifact_id: int, etag: str) -> str:
    """Render one artifact version (idempotent)."""
    try:
        return renditions.rendition_render(artifact_id=int(artifact_id), etag=str(etag))
    except (StorageUnavailable, OperationalError, InterfaceError) as exc:
        what = "Object storage" if isinstance(exc, StorageUnavailable) else "The database"
        if self.request.retries >= self.max_retries:
            try:
                renditions.rendition_fail(
                    artifact_id=int(artifact_id),
                    etag=str(etag),
                    reason=f"{what} kept failing after {self.max_retries + 1} tries: {exc}",
                )
            except DatabaseError:
                logging.getLogger("pipelens.render").exception(
                    "render_fail_unstored artifact=%s", artifact_id
                )
            return "failed"
        raise self.retry(exc=exc, countdown=_backoff(self)) from exc


@shared_task(name=table_sort_service.TABLE_SORT_TASK, **_RENDER_WORK)
def table_sort(self, *, rendition_id: int, column: int) -> str:
    """Build a table's sorted copy by one column (asked for by a page; runs/services/table_sort.py)."""
    try:
        return table_sort_service.table_sort_build(rendition_id=int(rendition_id), column=int(column))
    except StorageUnavailable as exc:
        if self.request.retries >= self.max_retries:
            return "failed"
        raise self.retry(exc=exc, countdown=_backoff(self)) from exc


# Recipe runs (runs/services/recipes.py): the trusted steps on the render queue, the
# recipe itself in the sandbox worker (runs/sandbox/task.py, registered by the import
# above; it needs no database). Redelivered if the worker dies; each step is idempotent
# (it acts only on a run in the state it expects).
_RECIPE_STEP = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "ignore_result": True,
    "soft_time_limit": settings.RENDER_SOFT_TIME_LIMIT_S,
    "time_limit": settings.RENDER_HARD_TIME_LIMIT_S,
}


@shared_task(name=recipes_service.RECIPE_RUN_TASK, **_RECIPE_STEP)
def recipe_run(run_id: int) -> str:
    """Claim a recipe run, read its input, send it to the sandbox worker."""
    return recipes_service.recipe_run_dispatch(run_id=int(run_id))


@shared_task(name=recipes_service.RECIPE_RESULT_TASK, **_RECIPE_STEP)
def recipe_result(*, run_id: int, result: dict) -> str:
    """Store what the sandbox worker sent back for a run."""
    return recipes_service.recipe_run_store(run_id=int(run_id), result=dict(result))


@shared_task(name=recipes_service.RECIPE_DEADLINE_TASK, **_RECIPE_STEP)
def recipe_deadline(*, run_id: int, deadline_at: float) -> str:
    """Fail a recipe run whose result did not come back in time."""
    return recipes_service.recipe_run_deadline(run_id=int(run_id), deadline_at=float(deadline_at))
