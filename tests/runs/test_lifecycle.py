"""runs.services.lifecycle against the real PostgreSQL, and its KFP polling against a
real HTTP server on loopback serving the recorded KFP answers (tests/runs/kfp_responses)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from runs.models import Run, Step
from runs.services import changes
from runs.services.ingest import ingest_events
from runs.services.lifecycle import (
    lifecycle_upkeep,
    run_apply_kfp_state,
    runs_mark_idle,
    runs_poll_kfp,
    runs_to_poll,
    steps_mark_ended,
)
from tests.factories import BASE_TIME, BucketFactory, object_event
from tests.runs.kfp_server import RECORDED_RUN_ID, RecordedKfp, recorded

pytestmark = pytest.mark.django_db

V1 = "artifacts/iris-pipeline-7xk2p/2026/11/29/iris-pipeline-7xk2p-{pod}/{file}"
V2 = f"v2/artifacts/iris-training/{RECORDED_RUN_ID}/{{task}}/{{file}}"
IDLE_AFTER = 300


@pytest.fixture(autouse=True)
def _lifecycle_settings(settings):
    settings.RUN_IDLE_AFTER_S = IDLE_AFTER
    settings.KFP_API_URL = ""
    settings.KFP_POLL_MAX_AGE_S = 86400


@pytest.fixture
def announced(monkeypatch):
    """The change sets announced after commit, as the live side receives them (wrap the
    call in ``django_capture_on_commit_callbacks(execute=True)``: the test's transaction
    never commits)."""
    seen: list[changes.Changes] = []
    monkeypatch.setattr(changes, "_listeners", [seen.append])
    return seen


def put(bucket, key: str, seconds: float):
    return ingest_events(events=[object_event(bucket.name, key, seconds=seconds)])


def at(seconds: float):
    return BASE_TIME + timedelta(seconds=seconds)


def statuses(run: Run) -> tuple[str, dict[str, str]]:
    run.refresh_from_db()
    return run.status, dict(run.steps.values_list("name", "status"))


# --- active and idle ------------------------------------------------------------------


def test_events_make_runs_and_steps_active():
    bucket = BucketFactory(name="b")
    put(bucket, "run/prep/a.csv", 0)
    assert statuses(Run.objects.get()) == ("active", {"prep": "active"})


def test_a_quiet_run_turns_idle_bumps_seq_and_is_announced(django_capture_on_commit_callbacks, monkeypatch):
    bucket = BucketFactory(name="b")
    put(bucket, "quiet/prep/a.csv", 0)
    put(bucket, "busy/prep/a.csv", 200)
    quiet, busy = Run.objects.get(run_key="quiet"), Run.objects.get(run_key="busy")
    seen = []
    monkeypatch.setattr(changes, "_listeners", [seen.append])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert runs_mark_idle(now=at(IDLE_AFTER + 1)) == 1
    assert seen == []  # nothing before commit
    for callback in callbacks:
        callback()
    assert [c.run_ids for c in seen] == [{quiet.pk}]
    assert statuses(quiet) == ("idle", {"prep": "idle"}) and quiet.seq == 2
    assert statuses(busy) == ("active", {"prep": "active"}) and busy.seq == 1
    # Nothing left to do: no change, no announcement, no seq.
    assert runs_mark_idle(now=at(IDLE_AFTER + 1)) == 0
    quiet.refresh_from_db()
    assert quiet.seq == 2


def test_a_quiet_step_of_an_active_run_turns_idle(announced, django_capture_on_commit_callbacks):
    bucket = BucketFactory(name="b")
    put(bucket, "run/prep/a.csv", 0)
    put(bucket, "run/train/model.pkl", 400)
    run = Run.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert runs_mark_idle(now=at(IDLE_AFTER + 100)) == 1
    assert statuses(run) == ("active", {"prep": "idle", "train": "active"})
    assert announced[-1].run_ids == {run.pk}


def test_a_newer_event_wakes_an_idle_run_and_its_step_an_older_one_does_not():
    bucket = BucketFactory(name="b")
    put(bucket, "run/prep/a.csv", 100)
    runs_mark_idle(now=at(100 + IDLE_AFTER + 1))
    run = Run.objects.get()
    # A backfill or a listing storing an older object: the run stays quiet.
    put(bucket, "run/prep/old.csv", 50)
    assert statuses(run) == ("idle", {"prep": "idle"})
    put(bucket, "run/train/new.csv", 1000)
    assert statuses(run) == ("active", {"prep": "idle", "train": "active"})
    put(bucket, "run/prep/b.csv", 1001)
    assert statuses(run) == ("active", {"prep": "active", "train": "active"})


@pytest.mark.parametrize("status", ["succeeded", "failed", "canceled", "running", "pending"])
def test_an_event_keeps_a_final_or_kubeflow_state(status):
    bucket = BucketFactory(name="b")
    put(bucket, "run/prep/a.csv", 0)
    Run.objects.update(status=status)
    Step.objects.update(status=status)
    put(bucket, "run/prep/b.csv", 10)
    assert statuses(Run.objects.get()) == (status, {"prep": status})
    # Kubeflow's states are not the event stream's to age either.
    assert runs_mark_idle(now=at(10_000)) == 0


@pytest.mark.django_db(transaction=True)
def test_a_run_ingest_holds_is_skipped_not_waited_for():
    import threading

    from django.db import connections, transaction

    bucket = BucketFactory(name="b")
    put(bucket, "held/prep/a.csv", 0)
    put(bucket, "free/prep/a.csv", 0)
    held = Run.objects.get(run_key="held")
    locked, release = threading.Event(), threading.Event()

    def hold():  # another writer (the consumer, say) in the middle of a batch
        try:
            with transaction.atomic():
                Run.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert locked.wait(30)
        assert runs_mark_idle(now=at(IDLE_AFTER + 1)) == 1
        assert Run.objects.get(pk=held.pk).status == "active"
        assert Run.objects.get(run_key="free").status == "idle"
    finally:
        release.set()
        thread.join()
    assert runs_mark_idle(now=at(IDLE_AFTER + 1)) == 1
    assert Run.objects.get(pk=held.pk).status == "idle"


# --- KFP v1: main.log ends a step --------------------------------------------------------


def test_a_v1_step_whose_log_arrived_is_done_and_stays_done(announced, django_capture_on_commit_callbacks):
    bucket = BucketFactory(name="mlpipeline")
    put(bucket, V1.format(pod="111", file="mlpipeline-metrics.tgz"), 0)
    put(bucket, V1.format(pod="111", file="main.log"), 1)
    put(bucket, V1.format(pod="222", file="model.tgz"), 2)
    run = Run.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert steps_mark_ended() == 1
    assert statuses(run) == (
        "active",
        {"iris-pipeline-7xk2p-111": "done", "iris-pipeline-7xk2p-222": "active"},
    )
    assert announced[-1].run_ids == {run.pk}
    assert steps_mark_ended() == 0
    # Later objects of the ended step (Argo uploads outputs and log together) leave it done;
    # the run, with no more events, turns idle with its other step.
    put(bucket, V1.format(pod="111", file="extra.tgz"), 3)
    assert lifecycle_upkeep(now=at(3 + IDLE_AFTER + 1)) == {"steps_ended": 0, "runs_changed": 1}
    assert statuses(run) == ("idle", {"iris-pipeline-7xk2p-111": "done", "iris-pipeline-7xk2p-222": "idle"})


def test_main_log_means_nothing_outside_kfp_v1_layouts():
    bucket = BucketFactory(name="b")
    put(bucket, "run/prep/main.log", 0)
    put(bucket, V2.format(task="train-model", file="main.log"), 0)
    assert steps_mark_ended() == 0
    assert set(Step.objects.values_list("status", flat=True)) == {"active"}


def test_a_removed_log_does_not_end_a_step():
    from runs.events import EventAction

    bucket = BucketFactory(name="mlpipeline")
    key = V1.format(pod="111", file="main.log")
    put(bucket, key, 0)
    ingest_events(events=[object_event(bucket.name, key, seconds=1, action=EventAction.REMOVED)])
    assert steps_mark_ended() == 0


# --- KFP v2: the run's state from the API ------------------------------------------------


def kfp_run(bucket, *tasks: str, seconds: float = 0) -> Run:
    for i, task in enumerate(tasks):
        put(bucket, V2.format(task=task, file="out.csv"), seconds + i)
    return Run.objects.get(run_key=f"v2/artifacts/iris-training/{RECORDED_RUN_ID}")


def serving(name: str) -> RecordedKfp:
    return RecordedKfp({f"/apis/v2beta1/runs/{RECORDED_RUN_ID}": (200, recorded(name))})


def test_poll_maps_the_recorded_running_run_onto_run_and_steps(announced, django_capture_on_commit_callbacks):
    run = kfp_run(BucketFactory(name="mlpipeline"), "preprocess", "train-model", "evaluate")
    with serving("run_running.json") as kfp, django_capture_on_commit_callbacks(execute=True):
        assert runs_poll_kfp(now=at(10), base_url=kfp.url, token="tok") == 1
    assert kfp.requests == [(f"/apis/v2beta1/runs/{RECORDED_RUN_ID}", "Bearer tok")]
    # evaluate has no task yet: left as the events say.
    assert statuses(run) == (
        "running",
        {"preprocess": "succeeded", "train-model": "running", "evaluate": "active"},
    )
    assert run.seq == 4 and announced[-1].run_ids == {run.pk}
    # Same answer again: nothing changes, nothing is announced.
    count = len(announced)
    with serving("run_running.json") as kfp, django_capture_on_commit_callbacks(execute=True):
        assert runs_poll_kfp(now=at(10), base_url=kfp.url) == 0
    run.refresh_from_db()
    assert run.seq == 4 and len(announced) == count


def test_poll_takes_a_run_to_its_end_and_then_stops_asking():
    run = kfp_run(BucketFactory(name="mlpipeline"), "preprocess", "train-model", "evaluate", "report")
    with serving("run_succeeded.json") as kfp:
        assert runs_poll_kfp(now=at(10), base_url=kfp.url) == 1
    assert statuses(run) == (
        "succeeded",
        {"preprocess": "skipped", "train-model": "succeeded", "evaluate": "succeeded", "report": "idle"},
    )
    assert runs_to_poll(now=at(10)) == []
    # A final state outlives later events and idle rounds.
    put(run.bucket, V2.format(task="report", file="late.html"), 100)
    runs_mark_idle(now=at(10_000))
    assert statuses(run)[0] == "succeeded"


def test_poll_failed_run_shows_the_failed_iteration():
    run = kfp_run(BucketFactory(name="mlpipeline"), "preprocess", "train-model")
    with serving("run_failed.json") as kfp:
        runs_poll_kfp(now=at(10), base_url=kfp.url)
    assert statuses(run) == ("failed", {"preprocess": "succeeded", "train-model": "failed"})


@pytest.mark.parametrize(
    ("status", "body"),
    [(404, "not_found.json"), (200, b"<html>gateway</html>"), (200, b'{"run_id": "someone-else"}')],
)
def test_poll_errors_are_logged_and_leave_the_run_as_it_is(status, body, caplog):
    run = kfp_run(BucketFactory(name="mlpipeline"), "train-model")
    payload = recorded(body) if isinstance(body, str) else body
    with RecordedKfp({f"/apis/v2beta1/runs/{RECORDED_RUN_ID}": (status, payload)}) as kfp:
        with caplog.at_level(logging.WARNING, logger="pipelens.lifecycle"):
            assert runs_poll_kfp(now=at(10), base_url=kfp.url, token="secret-token") == 0
    assert statuses(run) == ("active", {"train-model": "active"}) and run.seq == 1
    (line,) = [r.getMessage() for r in caplog.records if "kfp_poll_failed" in r.getMessage()]
    assert f"run={run.pk}" in line and RECORDED_RUN_ID in line
    assert "secret-token" not in caplog.text


def test_an_unreachable_api_ends_the_round_after_one_timeout(caplog):
    bucket = BucketFactory(name="mlpipeline")
    for n in range(3):
        put(bucket, f"v2/artifacts/p/{RECORDED_RUN_ID[:-1]}{n}/task/out.csv", n)
    with RecordedKfp(hang=True) as kfp, caplog.at_level(logging.WARNING, logger="pipelens.lifecycle"):
        assert runs_poll_kfp(now=at(10), base_url=kfp.url, timeout_s=0.5) == 0
    assert len(kfp.requests) == 1
    assert set(Run.objects.values_list("status", flat=True)) == {"active"}
    assert "event=kfp_poll_failed" in caplog.text and "did not answer" in caplog.text


def test_poll_is_off_without_a_url():
    kfp_run(BucketFactory(name="mlpipeline"), "train-model")
    assert runs_poll_kfp(now=at(10)) == 0


def test_which_runs_are_polled():
    bucket = BucketFactory(name="mlpipeline")
    live = kfp_run(bucket, "train-model", seconds=0)
    idle_id = RECORDED_RUN_ID.replace("7c4a", "8c4a")
    put(bucket, f"v2/artifacts/p/{idle_id}/t/x", 0)
    Run.objects.filter(run_key__endswith=idle_id).update(status="idle")
    done_id = RECORDED_RUN_ID.replace("7c4a", "9c4a")
    put(bucket, f"private-artifacts/team-a/v2/artifacts/p/{done_id}/t/x", 0)
    Run.objects.filter(run_key__endswith=done_id).update(status="succeeded")
    old_id = RECORDED_RUN_ID.replace("7c4a", "ac4a")
    put(bucket, f"private-artifacts/team-a/v2/artifacts/p/{old_id}/t/x", -2 * 86400)
    put(bucket, "v2/artifacts/p/not-a-uuid/t/x", 0)  # no run id to ask about
    put(bucket, V1.format(pod="1", file="a.tgz"), 0)  # KFP v1: no v2beta1 lookup
    put(bucket, "generic/step/x", 0)
    polled = {run.run_key.rsplit("/", 1)[-1] for run in runs_to_poll(now=at(10))}
    assert polled == {RECORDED_RUN_ID, idle_id}
    assert live.layout == "kfp_v2"


def test_apply_kfp_state_on_a_vanished_run_is_a_no_op():
    from runs.kfp_api import KfpRunState

    assert (
        run_apply_kfp_state(run_id=10**9, state=KfpRunState(run_id=RECORDED_RUN_ID, status="failed")) is False
    )


def test_the_command_runs_one_round_of_everything(settings):
    import io

    from django.core.management import call_command

    bucket = BucketFactory(name="mlpipeline")
    put(bucket, V1.format(pod="111", file="main.log"), -10_000)
    run = kfp_run(bucket, "preprocess", "train-model")
    out = io.StringIO()
    settings.KFP_POLL_MAX_AGE_S = 10 * 365 * 86400  # now is the real clock, BASE_TIME is fixed
    with serving("run_failed.json") as kfp:
        settings.KFP_API_URL = kfp.url
        call_command("run_lifecycle", stdout=out)
    # Now is long after BASE_TIME: the v1 run's step ended before its run idled.
    v1 = Run.objects.get(layout="kfp_v1_dated")
    assert statuses(v1) == ("idle", {"iris-pipeline-7xk2p-111": "done"})
    assert statuses(run)[0] == "failed"
    assert out.getvalue() == "steps ended: 1, runs changed: 2, runs changed by KFP: 1\n"
