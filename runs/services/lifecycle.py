"""Run lifecycle: what ``Run.status`` and ``Step.status`` say, kept current (docs/portal.md#run-status).

- Ingest makes a run and its step ``active`` when a newer event arrives
  (runs/services/ingest.py, ``_STATUS_ON_EVENT``), unless they hold a final
  state or one of Kubeflow's.
- ``runs_mark_idle``: runs and steps with no event for RUN_IDLE_AFTER_S turn ``idle``.
- ``steps_mark_ended``: a KFP v1 step whose ``main.log`` arrived has ended
  (Argo archives the log when the pod ends) and turns ``done``.
- ``runs_poll_kfp``: with KFP_API_URL set, unfinished KFP v2 runs take their
  state, and their steps their tasks' states, from the KFP API (runs/kfp_api.py).

Each is a complete unit: it changes rows, bumps the runs' ``seq`` in the same
transaction and announces them after commit (runs.services.changes), so open
pages update live. Rows are locked run first, then steps, like ingest, and
runs that ingest holds are skipped (``SKIP LOCKED``) rather than waited on:
they are getting events, and the next round sees them.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from runs.kfp_api import KfpApiError, KfpRunState, kfp_run_get, kfp_run_id_valid
from runs.layouts import LAYOUT_NAMES
from runs.models import FINAL_STATUSES, KFP_PROGRESS_STATUSES, LIVE_STATUSES, Run, Step
from runs.services.changes import changes_on_commit, runs_touch
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.lifecycle")

# Layouts whose run key ends with Kubeflow's run id (a UUID): KFP v2's pipeline
# root is <root>/<pipeline>/<run id>/<task>/... KFP v1 keys carry the Argo
# workflow name instead, which the v2beta1 API cannot look up.
KFP_RUN_ID_LAYOUTS = tuple(name for name in LAYOUT_NAMES if name.startswith("kfp_v2"))
# Layouts where Argo archives a step's log as main.log when the pod ends.
KFP_V1_LAYOUTS = tuple(name for name in LAYOUT_NAMES if name.startswith("kfp_v1"))
STEP_LOG_NAME = "main.log"


def _announce(run_ids) -> dict[int, int]:
    seqs = runs_touch(run_ids=run_ids)
    changes_on_commit(run_ids=seqs)
    return seqs


_LOCK_QUIET_RUNS = """
    SELECT r.id FROM runs_run r
    WHERE r.status = ANY(%(live)s)
      AND ((r.status = 'active' AND r.last_event_at < %(cutoff)s)
           OR EXISTS (SELECT 1 FROM runs_step s
                      WHERE s.run_id = r.id AND s.status = 'active' AND s.last_event_at < %(cutoff)s))
    ORDER BY r.id
    FOR UPDATE OF r SKIP LOCKED
"""


@transaction.atomic
def runs_mark_idle(*, now: datetime | None = None) -> int:
    """Turn active runs and steps without an event for RUN_IDLE_AFTER_S idle; returns
    how many runs changed (the run itself, or one of its steps)."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.RUN_IDLE_AFTER_S)
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_QUIET_RUNS, {"live": list(LIVE_STATUSES), "cutoff": cutoff})
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return 0
        cursor.execute(
            "UPDATE runs_run SET status = 'idle' WHERE id = ANY(%s) AND status = 'active' "
            "AND last_event_at < %s RETURNING id",
            [ids, cutoff],
        )
        changed = {row[0] for row in cursor.fetchall()}
        cursor.execute(
            "UPDATE runs_step SET status = 'idle' WHERE run_id = ANY(%s) AND status = 'active' "
            "AND last_event_at < %s RETURNING run_id",
            [ids, cutoff],
        )
        changed |= {row[0] for row in cursor.fetchall()}
    _announce(changed)
    if changed:
        log_event(logger, "runs_marked_idle", runs=len(changed))
    return len(changed)


_LOCK_RUNS_WITH_ENDED_STEPS = """
    SELECT r.id FROM runs_run r
    WHERE r.status = ANY(%(live)s) AND r.layout = ANY(%(layouts)s)
      AND EXISTS (SELECT 1 FROM runs_step s JOIN runs_artifact a ON a.run_id = s.run_id AND a.step_id = s.id
                  WHERE s.run_id = r.id AND s.status IN ('active', 'idle')
                    AND a.name = %(log)s AND NOT a.deleted)
    ORDER BY r.id
    FOR UPDATE OF r SKIP LOCKED
"""


@transaction.atomic
def steps_mark_ended() -> int:
    """KFP v1 steps (of runs still live) whose ``main.log`` arrived turn ``done``; returns
    how many steps changed.

    ``done``, not ``succeeded``: Argo archives the log of a failed pod as
    well, and without a KFP v1 lookup Pipelens cannot tell the two apart.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCK_RUNS_WITH_ENDED_STEPS,
            {"live": list(LIVE_STATUSES), "layouts": list(KFP_V1_LAYOUTS), "log": STEP_LOG_NAME},
        )
        ids = [row[0] for row in cursor.fetchall()]
        if not ids:
            return 0
        cursor.execute(
            """UPDATE runs_step s SET status = 'done'
               WHERE s.run_id = ANY(%s) AND s.status IN ('active', 'idle')
                 AND EXISTS (SELECT 1 FROM runs_artifact a
                             WHERE a.run_id = s.run_id AND a.step_id = s.id AND a.name = %s AND NOT a.deleted)
               RETURNING s.run_id""",
            [ids, STEP_LOG_NAME],
        )
        rows = cursor.fetchall()
    _announce({run_id for (run_id,) in rows})
    if rows:
        log_event(logger, "steps_marked_ended", steps=len(rows))
    return len(rows)


def lifecycle_upkeep(*, now: datetime | None = None) -> dict[str, int]:
    """One round of the event-driven rules (call every RUN_LIFECYCLE_TICK_S): ended
    v1 steps first, so that a step whose log arrived is ``done`` rather than idle."""
    return {"steps_ended": steps_mark_ended(), "runs_changed": runs_mark_idle(now=now)}


# --- Kubeflow Pipelines --------------------------------------------------------------


def kfp_run_id(run: Run) -> str | None:
    """The KFP run id a run's key carries (its last segment, a UUID), or None."""
    if run.layout not in KFP_RUN_ID_LAYOUTS:
        return None
    candidate = run.run_key.rsplit("/", 1)[-1]
    return candidate if kfp_run_id_valid(candidate) else None


def runs_to_poll(*, now: datetime | None = None) -> list[Run]:
    """Unfinished runs with a KFP run id and an event within KFP_POLL_MAX_AGE_S, newest first."""
    since = (now or timezone.now()) - timedelta(seconds=settings.KFP_POLL_MAX_AGE_S)
    runs = (
        Run.objects.filter(
            layout__in=KFP_RUN_ID_LAYOUTS,
            status__in=(Run.Status.ACTIVE, Run.Status.IDLE, *KFP_PROGRESS_STATUSES),
            last_event_at__gte=since,
        )
        .only("id", "run_key", "layout", "status")
        .order_by("-last_event_at", "-id")[: settings.KFP_POLL_MAX_RUNS]
    )
    return [run for run in runs if kfp_run_id(run)]


def runs_poll_kfp(
    *,
    now: datetime | None = None,
    base_url: str | None = None,
    token: str | None = None,
    timeout_s: float | None = None,
) -> int:
    """Ask the KFP API for the state of each run ``runs_to_poll`` finds and apply it;
    returns how many runs changed. Does nothing when KFP_API_URL is empty.

    A failure for one run (404, an answer that is not a run) is logged and the
    run left as it is; when the API is unreachable the round stops there, as
    every other run would wait for the same timeout.
    """
    base_url = settings.KFP_API_URL if base_url is None else base_url
    if not base_url:
        return 0
    token = settings.KFP_API_TOKEN if token is None else token
    timeout_s = settings.KFP_TIMEOUT_S if timeout_s is None else timeout_s
    changed = failed = 0
    for run in runs_to_poll(now=now):
        run_id = kfp_run_id(run)
        try:
            state = kfp_run_get(base_url=base_url, run_id=run_id, token=token, timeout_s=timeout_s)
        except KfpApiError as exc:
            failed += 1
            log_event(
                logger, "kfp_poll_failed", level=logging.WARNING, run=run.pk, kfp_run=run_id, error=str(exc)
            )
            if exc.unreachable:
                break
            continue
        changed += run_apply_kfp_state(run_id=run.pk, state=state)
    if changed or failed:
        log_event(logger, "kfp_polled", changed=changed, failed=failed)
    return changed


@transaction.atomic
def run_apply_kfp_state(*, run_id: int, state: KfpRunState) -> bool:
    """Give run ``run_id`` and its steps the states KFP reported; True when anything changed.

    A step takes the state of the tasks whose ``display_name`` is its name
    (KFP v2 writes each task's outputs under a folder of that name); steps no
    task matches are left alone, and when the run is over any of them still
    ``active`` turns ``idle``.
    """
    run = Run.objects.select_for_update().filter(pk=run_id).only("id", "status").first()
    if run is None:
        return False
    changed = False
    if state.status and state.status != run.status:
        Run.objects.filter(pk=run_id).update(status=state.status)
        changed = True
    steps = Step.objects.filter(run_id=run_id).only("id", "name", "status")
    for step in steps:
        wanted = state.steps.get(step.name)
        if wanted is None and state.status in FINAL_STATUSES and step.status == Run.Status.ACTIVE:
            wanted = Run.Status.IDLE
        if wanted and wanted != step.status:
            Step.objects.filter(pk=step.pk).update(status=wanted)
            changed = True
    if changed:
        _announce([run_id])
        log_event(logger, "run_kfp_state", run=run_id, status=state.status or run.status)
    return changed
