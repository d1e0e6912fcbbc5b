"""The sandbox worker's task: run one recipe on bytes it was handed, hand the result back
(docs/recipes.md#runs-caching-and-automatic-runs, docs/deploy.md#network-policy).

The sandbox worker reaches nothing but the broker: no database, no object
store. The trusted render worker claims the run and reads the artifact
(runs/services/recipes.py ``recipe_run_dispatch``) and sends this task a
*job*: the recipe's source, the input bytes (base64, at most
SANDBOX_INPUT_MAX_BYTES), the metadata the recipe sees and the queue to reply
on. This module runs it under bubblewrap (runner.py) and sends the bounded
result (SANDBOX_RESULT_BYTES of output, SANDBOX_LOG_BYTES of each log) back
as ``runs.recipe_result`` on that queue, where the trusted worker stores it.

So this module imports no model, storage or service module (tests/
test_import_rules.py checks it), and the worker process running it never
opens a database connection (tests/runs/test_recipes_live.py runs it with an
unreachable DATABASE_URL).

A sandbox worker that is lost mid-run (killed, its pod evicted) does not get
the job again (``reject_on_worker_lost`` off): re-running untrusted code that
took its worker down would do it again. The trusted side fails the run as
"lost" when no result came back in time (``recipe_run_deadline``).
"""

from __future__ import annotations

import base64
import binascii

from celery import current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from runs.sandbox.runner import Limits, SandboxUnavailable, run_recipe

RECIPE_SANDBOX_TASK = "runs.recipe_sandbox"
RECIPE_RESULT_TASK = "runs.recipe_result"
# How long a job may wait in SANDBOX_QUEUE for a sandbox worker before it is dropped.
SANDBOX_JOB_EXPIRES_S = 3600
# The sandbox has its own wall clock (SANDBOX_WALL_S); these only catch a stuck worker.
SANDBOX_SOFT_TIME_LIMIT_S = int(settings.SANDBOX_WALL_S) + 60
SANDBOX_TIME_LIMIT_S = int(settings.SANDBOX_WALL_S) + 90


def sandbox_limits() -> Limits:
    """The sandbox's limits, from the SANDBOX_* settings (docs/recipes.md)."""
    return Limits(
        wall_s=settings.SANDBOX_WALL_S,
        cpu_s=settings.SANDBOX_CPU_S,
        memory_bytes=settings.SANDBOX_MEMORY_MB * 2**20,
        file_bytes=settings.SANDBOX_FILE_MB * 2**20,
        tmp_bytes=settings.SANDBOX_TMP_MB * 2**20,
        open_files=settings.SANDBOX_OPEN_FILES,
        processes=settings.SANDBOX_PROCESSES,
        log_bytes=settings.SANDBOX_LOG_BYTES,
        flood_bytes=settings.SANDBOX_FLOOD_BYTES,
        result_bytes=settings.SANDBOX_RESULT_BYTES,
    )


def sandbox_job(
    *, run_id: int, source: str, data: bytes, filename: str, meta: dict, reply_queue: str
) -> dict:
    """The JSON-safe message of one run (built by the trusted worker)."""
    return {
        "run_id": int(run_id),
        "source": source,
        "data_b64": base64.b64encode(data).decode("ascii"),
        "filename": filename,
        "meta": meta,
        "reply_queue": reply_queue,
    }


def _failure(reason: str, message: str) -> dict:
    return {"reason": reason, "message": message, "output": None, "stdout": "", "stderr": "", "traceback": ""}


def sandbox_job_run(job: dict) -> dict:
    """Run one job in the sandbox; the JSON-safe result the trusted worker stores
    (``runs.services.recipes.recipe_run_store``). Never raises for anything a job holds."""
    limit = settings.SANDBOX_INPUT_MAX_BYTES
    encoded = job.get("data_b64") or ""
    if len(encoded) > 4 * (limit // 3 + 1):
        return _failure("input", f"The file is larger than {limit} bytes (SANDBOX_INPUT_MAX_BYTES).")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return _failure("input", "The input did not arrive intact.")
    try:
        result = run_recipe(
            source=str(job.get("source") or ""),
            data=data,
            filename=str(job.get("filename") or "input"),
            meta=dict(job.get("meta") or {}),
            venv=settings.SANDBOX_VENV,
            limits=sandbox_limits(),
            allow_weak=settings.SANDBOX_ALLOW_WEAK,
            uid=settings.SANDBOX_UID,
        )
    except SandboxUnavailable as exc:
        return _failure("unavailable", str(exc))
    except SoftTimeLimitExceeded:
        return _failure("timeout", "The sandbox worker stopped the run (its task time limit).")
    return {
        "reason": result.reason,
        "message": result.message,
        "output": result.output if result.ok else None,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "traceback": result.extra.get("traceback", ""),
        "sandbox_mode": result.mode,
        "duration_ms": result.duration_ms,
    }


@shared_task(
    name=RECIPE_SANDBOX_TASK,
    acks_late=True,
    reject_on_worker_lost=False,  # see the module docstring: never re-run what took a worker down
    ignore_result=True,
    soft_time_limit=SANDBOX_SOFT_TIME_LIMIT_S,
    time_limit=SANDBOX_TIME_LIMIT_S,
)
def recipe_sandbox(job: dict) -> str:
    """Run one recipe job under bubblewrap and send its result back (served by the sandbox worker)."""
    result = sandbox_job_run(job)
    current_app.send_task(
        RECIPE_RESULT_TASK,
        kwargs={"run_id": int(job["run_id"]), "result": result},
        queue=str(job["reply_queue"]),
    )
    return str(result["reason"])
