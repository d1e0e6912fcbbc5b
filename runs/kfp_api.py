"""Kubeflow Pipelines' run API: which state a run and its tasks are in.

The one module that talks to a KFP API server (docs/inputs.md#kubeflow-run-states).
``kfp_run_get`` asks ``GET {KFP_API_URL}/apis/v2beta1/runs/{run_id}``; the pure
``kfp_run_state_parse`` reads the answer with the field names of KFP's published
schema (``backend/api/v2beta1/swagger/run.swagger.json``: ``v2beta1Run.state``,
``run_details.task_details[].display_name`` and ``.state``, enum
``v2beta1RuntimeState``). No Django models here; the lifecycle service
(runs/services/lifecycle.py) applies the result.

Every failure (unreachable, timeout, an HTTP error, an answer that is not the
schema) raises ``KfpApiError`` with a reason fit for a log line: the caller
logs it and leaves the run as it was.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

# V2beta1RuntimeState -> Run.Status. RUNTIME_STATE_UNSPECIFIED ("not used",
# says the schema) and any state a newer KFP adds map to nothing: no change.
KFP_STATES = {
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "SKIPPED": "skipped",
    "FAILED": "failed",
    "CANCELING": "canceling",
    "CANCELED": "canceled",
    "PAUSED": "paused",
}

# When several tasks share a display name (a ParallelFor's iterations, a
# retried task), the step shows the first of these found among them: a
# failure is never hidden by a sibling's success, and unfinished beats finished.
_TASK_PRECEDENCE = ("failed", "canceling", "running", "pending", "paused", "canceled", "succeeded", "skipped")

# Run ids are UUIDs (KFP's run folder in pipeline_root); anything else is not
# sent to the API at all.
_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# An answer larger than this is not a run (the pipeline_spec of a big pipeline
# is some hundreds of KB).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024


class KfpApiError(Exception):
    """The run's state could not be had; ``str(exc)`` says why (no secrets).

    ``unreachable``: no answer at all (refused, timed out), so asking about
    other runs now would fail the same way.
    """

    def __init__(self, message: str, *, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


@dataclass(frozen=True, slots=True)
class KfpRunState:
    """A run's state in Pipelens' words: ``status`` and ``steps`` ({display name: status})."""

    run_id: str
    status: str | None  # None: KFP gave no state we know
    steps: dict[str, str] = field(default_factory=dict)


def kfp_run_id_valid(run_id: str) -> bool:
    return bool(_RUN_ID.fullmatch(run_id))


def kfp_run_state_parse(body: bytes | str, *, run_id: str) -> KfpRunState:
    """Read a ``v2beta1Run`` JSON answer; raises ``KfpApiError`` when it is not one."""
    try:
        run = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise KfpApiError(f"the answer is not JSON: {exc}") from None
    if not isinstance(run, dict):
        raise KfpApiError(f"the answer is a JSON {type(run).__name__}, not a run object")
    answered_id = run.get("run_id")
    if answered_id is not None and answered_id != run_id:
        raise KfpApiError(f"asked for run {run_id}, the answer is run {str(answered_id)[:80]!r}")
    state = run.get("state")
    if state is not None and not isinstance(state, str):
        raise KfpApiError(f"the run's state is a {type(state).__name__}, not a string")
    details = run.get("run_details")
    details = {} if details is None else details
    if not isinstance(details, dict):
        raise KfpApiError("run_details is not an object")
    tasks = details.get("task_details")
    tasks = [] if tasks is None else tasks
    if not isinstance(tasks, list):
        raise KfpApiError("run_details.task_details is not a list")
    by_name: dict[str, set[str]] = {}
    for task in tasks:
        if not isinstance(task, dict):
            raise KfpApiError("an entry of run_details.task_details is not an object")
        name, task_state = task.get("display_name"), KFP_STATES.get(task.get("state") or "")
        if isinstance(name, str) and name and task_state:
            by_name.setdefault(name, set()).add(task_state)
    steps = {name: next(s for s in _TASK_PRECEDENCE if s in states) for name, states in by_name.items()}
    return KfpRunState(run_id=run_id, status=KFP_STATES.get(state or ""), steps=steps)


def kfp_run_get(*, base_url: str, run_id: str, token: str = "", timeout_s: float = 5.0) -> KfpRunState:
    """GET one run from the KFP API at ``base_url``; raises ``KfpApiError`` on any failure."""
    if not kfp_run_id_valid(run_id):
        raise KfpApiError(f"{run_id[:80]!r} is not a KFP run id")
    if urllib.parse.urlsplit(base_url).scheme not in ("http", "https"):
        raise KfpApiError("KFP_API_URL must be an http:// or https:// URL")
    url = f"{base_url.rstrip('/')}/apis/v2beta1/runs/{urllib.parse.quote(run_id)}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        # The swagger's security definition: a bearer token in "authorization".
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (http(s) URL from settings)
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise KfpApiError(f"HTTP {exc.code} from the KFP API for run {run_id}") from None
    except (OSError, http.client.HTTPException) as exc:  # URLError, timeouts, resets, bad HTTP
        reason = getattr(exc, "reason", None) or repr(exc)
        raise KfpApiError(
            f"the KFP API did not answer for run {run_id}: {reason}", unreachable=True
        ) from None
    if len(body) > MAX_RESPONSE_BYTES:
        raise KfpApiError(f"the answer for run {run_id} is larger than {MAX_RESPONSE_BYTES} bytes")
    return kfp_run_state_parse(body, run_id=run_id)
