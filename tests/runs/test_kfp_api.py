"""runs.kfp_api: the recorded KFP v2beta1 answers against the published schema, the
state mapping, and the HTTP client against a real server on loopback (no Django)."""

from __future__ import annotations

import json
import socket

import pytest

from runs.kfp_api import KFP_STATES, KfpApiError, kfp_run_get, kfp_run_state_parse
from tests.runs.kfp_server import RECORDED_RUN_ID, RESPONSES, RecordedKfp, recorded

# --- the contract: field names of backend/api/v2beta1/swagger/run.swagger.json ---------
# (kubeflow/pipelines, read at d8e9da08f646f9cd55977f1a6fa62ecb03dea6d5; see the
# fixtures' README). Each definition: {field: definition of its value or None}.
RUNTIME_STATES = {
    "RUNTIME_STATE_UNSPECIFIED",
    "PENDING",
    "RUNNING",
    "SUCCEEDED",
    "SKIPPED",
    "FAILED",
    "CANCELING",
    "CANCELED",
    "PAUSED",
}
SCHEMA: dict[str, dict[str, str | None]] = {
    "v2beta1Run": {
        "experiment_id": None,
        "run_id": None,
        "display_name": None,
        "storage_state": "v2beta1RunStorageState",
        "description": None,
        "pipeline_version_id": None,
        "pipeline_spec": "object",
        "pipeline_version_reference": "v2beta1PipelineVersionReference",
        "runtime_config": "v2beta1RuntimeConfig",
        "service_account": None,
        "created_at": None,
        "scheduled_at": None,
        "finished_at": None,
        "state": "v2beta1RuntimeState",
        "error": "googlerpcStatus",
        "run_details": "v2beta1RunDetails",
        "recurring_run_id": None,
        "state_history": "[v2beta1RuntimeStatus]",
    },
    "v2beta1RunDetails": {
        "pipeline_context_id": None,
        "pipeline_run_context_id": None,
        "task_details": "[v2beta1PipelineTaskDetail]",
    },
    "v2beta1PipelineTaskDetail": {
        "run_id": None,
        "task_id": None,
        "display_name": None,
        "create_time": None,
        "start_time": None,
        "end_time": None,
        "executor_detail": "v2beta1PipelineTaskExecutorDetail",
        "state": "v2beta1RuntimeState",
        "execution_id": None,
        "error": "googlerpcStatus",
        "inputs": "{v2beta1ArtifactList}",
        "outputs": "{v2beta1ArtifactList}",
        "parent_task_id": None,
        "state_history": "[v2beta1RuntimeStatus]",
        "pod_name": None,
        "child_tasks": "[PipelineTaskDetailChildTask]",
    },
    "v2beta1PipelineTaskExecutorDetail": {
        "main_job": None,
        "pre_caching_check_job": None,
        "failed_main_jobs": None,
        "failed_pre_caching_check_jobs": None,
    },
    "PipelineTaskDetailChildTask": {"task_id": None, "pod_name": None},
    "v2beta1ArtifactList": {"artifact_ids": None},
    "v2beta1PipelineVersionReference": {"pipeline_id": None, "pipeline_version_id": None},
    "v2beta1RuntimeConfig": {"parameters": "object", "pipeline_root": None},
    "v2beta1RuntimeStatus": {"update_time": None, "state": "v2beta1RuntimeState", "error": "googlerpcStatus"},
    "googlerpcStatus": {"code": None, "message": None, "details": None},
    "runtimeError": {"error": None, "code": None, "message": None, "details": None},
}
ENUMS = {
    "v2beta1RuntimeState": RUNTIME_STATES,
    "v2beta1RunStorageState": {"STORAGE_STATE_UNSPECIFIED", "AVAILABLE", "ARCHIVED"},
}


def conforms(value, definition: str, where: str = "$") -> list[str]:
    """Where ``value`` strays from ``definition`` (unknown field, bad enum value, wrong shape)."""
    if definition == "object":
        return [] if isinstance(value, dict) else [f"{where}: not an object"]
    if definition.startswith("["):
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        return [p for i, v in enumerate(value) for p in conforms(v, definition[1:-1], f"{where}[{i}]")]
    if definition.startswith("{"):
        if not isinstance(value, dict):
            return [f"{where}: not a map"]
        return [p for k, v in value.items() for p in conforms(v, definition[1:-1], f"{where}.{k}")]
    if definition in ENUMS:
        return [] if value in ENUMS[definition] else [f"{where}: {value!r} is not a {definition}"]
    if not isinstance(value, dict):
        return [f"{where}: not an object"]
    fields = SCHEMA[definition]
    problems = [f"{where}.{k}: not a field of {definition}" for k in value if k not in fields]
    for k, v in value.items():
        if fields.get(k):
            problems += conforms(v, fields[k], f"{where}.{k}")
    return problems


RUN_FILES = sorted(p.name for p in RESPONSES.glob("run_*.json"))


@pytest.mark.parametrize("name", RUN_FILES)
def test_recorded_runs_use_only_the_schemas_fields_and_states(name):
    assert conforms(json.loads(recorded(name)), "v2beta1Run") == []


def test_recorded_error_is_the_schemas_runtime_error():
    assert conforms(json.loads(recorded("not_found.json")), "runtimeError") == []


def test_the_contract_check_catches_a_misspelt_field_and_an_unknown_state():
    run = json.loads(recorded("run_running.json"))
    run["run_details"]["task_details"][0]["displayName"] = "camelCase is not what KFP sends"
    run["state"] = "DONE"
    assert conforms(run, "v2beta1Run") == [
        "$.state: 'DONE' is not a v2beta1RuntimeState",
        "$.run_details.task_details[0].displayName: not a field of v2beta1PipelineTaskDetail",
    ]


def test_every_runtime_state_but_unspecified_has_a_status():
    assert set(KFP_STATES) == RUNTIME_STATES - {"RUNTIME_STATE_UNSPECIFIED"}
    assert set(KFP_STATES.values()) == {s.lower() for s in KFP_STATES}


# --- the mapping ----------------------------------------------------------------------


def parse(name: str):
    return kfp_run_state_parse(recorded(name), run_id=RECORDED_RUN_ID)


def test_running_run_and_its_tasks_by_display_name():
    state = parse("run_running.json")
    assert state.status == "running"
    assert state.steps == {
        "root": "running",
        "root-driver": "succeeded",
        "preprocess-driver": "succeeded",
        "preprocess": "succeeded",
        "train-model-driver": "succeeded",
        "train-model": "running",
    }


def test_succeeded_run_with_a_cached_task():
    state = parse("run_succeeded.json")
    assert state.status == "succeeded"
    assert (state.steps["preprocess"], state.steps["train-model"]) == ("skipped", "succeeded")


def test_a_failed_iteration_is_not_hidden_by_a_successful_one():
    state = parse("run_failed.json")
    assert (state.status, state.steps["train-model"], state.steps["preprocess"]) == (
        "failed",
        "failed",
        "succeeded",
    )


def test_unspecified_or_unknown_states_change_nothing():
    run = json.loads(recorded("run_running.json"))
    run["state"] = "RUNTIME_STATE_UNSPECIFIED"
    run["run_details"]["task_details"][5]["state"] = "SOMETHING_NEWER"
    state = kfp_run_state_parse(json.dumps(run), run_id=RECORDED_RUN_ID)
    assert state.status is None and "train-model" not in state.steps
    del run["state"], run["run_details"]
    assert kfp_run_state_parse(json.dumps(run), run_id=RECORDED_RUN_ID).status is None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[1, 2]", "JSON list"),
        (b'{"run_id": "another", "state": "RUNNING"}', "asked for run"),
        (b'{"state": 3}', "state is a int"),
        (b'{"run_details": []}', "run_details is not an object"),
        (b'{"run_details": {"task_details": {}}}', "task_details is not a list"),
        (b'{"run_details": {"task_details": ["x"]}}', "is not an object"),
    ],
)
def test_answers_that_are_not_a_run_are_refused_with_a_reason(body, reason):
    with pytest.raises(KfpApiError, match=reason):
        kfp_run_state_parse(body, run_id=RECORDED_RUN_ID)


# --- the HTTP client against a real server on loopback ---------------------------------


def test_client_gets_the_run_with_the_bearer_token():
    path = f"/apis/v2beta1/runs/{RECORDED_RUN_ID}"
    with RecordedKfp({path: (200, recorded("run_succeeded.json"))}) as kfp:
        state = kfp_run_get(base_url=kfp.url + "/", run_id=RECORDED_RUN_ID, token="t0ken", timeout_s=5)
    assert state.status == "succeeded"
    assert kfp.requests == [(path, "Bearer t0ken")]


def test_client_sends_no_authorization_without_a_token():
    with RecordedKfp() as kfp, pytest.raises(KfpApiError, match="HTTP 404") as caught:
        kfp_run_get(base_url=kfp.url, run_id=RECORDED_RUN_ID, timeout_s=5)
    assert kfp.requests == [(f"/apis/v2beta1/runs/{RECORDED_RUN_ID}", None)]
    assert not caught.value.unreachable


def test_client_refuses_garbage_and_server_errors():
    path = f"/apis/v2beta1/runs/{RECORDED_RUN_ID}"
    with RecordedKfp({path: (200, b"{not json")}) as kfp, pytest.raises(KfpApiError, match="not JSON"):
        kfp_run_get(base_url=kfp.url, run_id=RECORDED_RUN_ID, timeout_s=5)
    with (
        RecordedKfp({path: (503, b"upstream connect error")}) as kfp,
        pytest.raises(KfpApiError, match="HTTP 503"),
    ):
        kfp_run_get(base_url=kfp.url, run_id=RECORDED_RUN_ID, timeout_s=5)


def test_client_gives_up_on_a_server_that_never_answers():
    with RecordedKfp(hang=True) as kfp, pytest.raises(KfpApiError, match="did not answer") as caught:
        kfp_run_get(base_url=kfp.url, run_id=RECORDED_RUN_ID, timeout_s=0.5)
    assert caught.value.unreachable


def test_client_reports_a_refused_connection():
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(KfpApiError, match="did not answer") as caught:
            kfp_run_get(base_url=url, run_id=RECORDED_RUN_ID, timeout_s=5)
    assert caught.value.unreachable


@pytest.mark.parametrize("run_id", ["../../healthz", "iris-training-x7k2p", ""])
def test_client_never_sends_what_is_not_a_run_id(run_id):
    with RecordedKfp() as kfp, pytest.raises(KfpApiError, match="not a KFP run id"):
        kfp_run_get(base_url=kfp.url, run_id=run_id, timeout_s=5)
    assert kfp.requests == []


def test_client_refuses_a_url_that_is_not_http():
    with pytest.raises(KfpApiError, match="http"):
        kfp_run_get(base_url="file:///etc", run_id=RECORDED_RUN_ID, timeout_s=5)
