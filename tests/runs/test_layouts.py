"""Tests for runs/layouts.py: object key -> run, step, artifact."""

from __future__ import annotations

import pytest

from runs.layouts import (
    DEFAULT_LAYOUTS,
    LAYOUT_NAMES,
    ResolvedKey,
    UnresolvableKey,
    resolve_key,
    validate_layout_names,
)

WF = "iris-pipeline-7xk2p"
POD = "iris-pipeline-7xk2p-3301820553"
NS = "kubeflow-user-alice"
RUN_ID = "0b0e7d4c-2f7a-4a51-9a43-5b8f3cbe6e1a"
EXEC = "8d6f1c2e-0a4b-4c3d-9e8f-112233445566"


def test_layout_names_and_default_order():
    assert LAYOUT_NAMES == ("kfp_v1_private", "kfp_v2_private", "kfp_v1_dated", "kfp_v1", "kfp_v2", "generic")
    assert DEFAULT_LAYOUTS == LAYOUT_NAMES


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (
            f"private-artifacts/{NS}/{WF}/2026/11/29/{POD}/mlpipeline-ui-metadata.tgz",
            ResolvedKey(
                "kfp_v1_private",
                f"private-artifacts/{NS}/{WF}",
                WF,
                POD,
                "mlpipeline-ui-metadata.tgz",
                pipeline="iris-pipeline",
                namespace=NS,
            ),
        ),
        (
            f"private-artifacts/{NS}/{WF}/2026/11/29/{POD}/main.log",
            ResolvedKey(
                "kfp_v1_private",
                f"private-artifacts/{NS}/{WF}",
                WF,
                POD,
                "main.log",
                pipeline="iris-pipeline",
                namespace=NS,
            ),
        ),
        (
            f"private-artifacts/{NS}/v2/artifacts/iris-training/{RUN_ID}/train-model/{EXEC}/model",
            ResolvedKey(
                "kfp_v2_private",
                f"private-artifacts/{NS}/v2/artifacts/iris-training/{RUN_ID}",
                RUN_ID,
                "train-model",
                "model",
                pipeline="iris-training",
                namespace=NS,
            ),
        ),
        (
            f"private-artifacts/{NS}/v2/artifacts/iris-training/{RUN_ID}/evaluate/metrics.html",
            ResolvedKey(
                "kfp_v2_private",
                f"private-artifacts/{NS}/v2/artifacts/iris-training/{RUN_ID}",
                RUN_ID,
                "evaluate",
                "metrics.html",
                pipeline="iris-training",
                namespace=NS,
            ),
        ),
        (
            f"artifacts/{WF}/2026/11/29/{POD}/mlpipeline-metrics.tgz",
            ResolvedKey(
                "kfp_v1_dated", f"artifacts/{WF}", WF, POD, "mlpipeline-metrics.tgz", pipeline="iris-pipeline"
            ),
        ),
        (
            f"artifacts/{WF}/2026/11/29/{POD}/main.log",
            ResolvedKey("kfp_v1_dated", f"artifacts/{WF}", WF, POD, "main.log", pipeline="iris-pipeline"),
        ),
        (
            f"artifacts/{WF}/{POD}/train-accuracy.tgz",
            ResolvedKey("kfp_v1", f"artifacts/{WF}", WF, POD, "train-accuracy.tgz", pipeline="iris-pipeline"),
        ),
        (
            f"artifacts/{WF}/{POD}/main.log",
            ResolvedKey("kfp_v1", f"artifacts/{WF}", WF, POD, "main.log", pipeline="iris-pipeline"),
        ),
        (
            f"v2/artifacts/iris-training/{RUN_ID}/train-model/{EXEC}/model",
            ResolvedKey(
                "kfp_v2",
                f"v2/artifacts/iris-training/{RUN_ID}",
                RUN_ID,
                "train-model",
                "model",
                pipeline="iris-training",
            ),
        ),
        (
            f"v2/artifacts/iris-training/{RUN_ID}/train-model/{EXEC}/model/saved_model/variables/v.index",
            ResolvedKey(
                "kfp_v2",
                f"v2/artifacts/iris-training/{RUN_ID}",
                RUN_ID,
                "train-model",
                "model/saved_model/variables/v.index",
                pipeline="iris-training",
            ),
        ),
        (
            f"v2/artifacts/iris-training/{RUN_ID}/evaluate-model/confusion_matrix",
            ResolvedKey(
                "kfp_v2",
                f"v2/artifacts/iris-training/{RUN_ID}",
                RUN_ID,
                "evaluate-model",
                "confusion_matrix",
                pipeline="iris-training",
            ),
        ),
        (
            f"v2/artifacts/iris-training/{RUN_ID}/evaluate-model/report/index.html",
            ResolvedKey(
                "kfp_v2",
                f"v2/artifacts/iris-training/{RUN_ID}",
                RUN_ID,
                "evaluate-model",
                "report/index.html",
                pipeline="iris-training",
            ),
        ),
        (
            "nightly-2026-11-29/preprocess/stats/columns.csv",
            ResolvedKey(
                "generic", "nightly-2026-11-29", "nightly-2026-11-29", "preprocess", "stats/columns.csv"
            ),
        ),
        (
            "exp42/train/progress.json",
            ResolvedKey("generic", "exp42", "exp42", "train", "progress.json"),
        ),
    ],
)
def test_every_layout_resolves_realistic_keys(key, expected):
    assert resolve_key(key) == expected


def test_uuid_folder_is_only_dropped_when_it_is_a_canonical_uuid():
    upper = EXEC.upper()
    got = resolve_key(f"v2/artifacts/p/{RUN_ID}/train/{upper}/model")
    assert (got.step_name, got.artifact_name) == ("train", f"{upper}/model")
    got = resolve_key(f"v2/artifacts/p/{RUN_ID}/train/{EXEC[:-1]}/model")
    assert got.artifact_name == f"{EXEC[:-1]}/model"


def test_v2_output_named_like_a_uuid_without_a_path_is_the_artifact():
    got = resolve_key(f"v2/artifacts/p/{RUN_ID}/train/{EXEC}")
    assert (got.layout, got.artifact_name) == ("kfp_v2", EXEC)


@pytest.mark.parametrize(
    "keys",
    [
        [
            f"artifacts/{WF}/2026/11/29/{POD}/a.tgz",
            f"artifacts/{WF}/2026/11/30/{WF}-42/b.tgz",
            f"artifacts/{WF}/2026/12/01/{WF}-43/main.log",
        ],
        [
            f"private-artifacts/{NS}/{WF}/2026/12/31/{POD}/a.tgz",
            f"private-artifacts/{NS}/{WF}/2027/01/01/{WF}-42/b.tgz",
        ],
        [f"v2/artifacts/p/{RUN_ID}/a/{EXEC}/x", f"v2/artifacts/p/{RUN_ID}/b/y/z"],
    ],
)
def test_run_key_is_stable_across_date_folders_and_steps(keys):
    resolved = [resolve_key(k) for k in keys]
    assert len({r.run_key for r in resolved}) == 1
    assert len({r.step_name for r in resolved}) == len(keys)


def test_runs_in_different_namespaces_or_pipelines_are_different_runs():
    a = resolve_key(f"private-artifacts/team-a/{WF}/2026/11/29/{POD}/a.tgz")
    b = resolve_key(f"private-artifacts/team-b/{WF}/2026/11/29/{POD}/a.tgz")
    c = resolve_key(f"v2/artifacts/p1/{RUN_ID}/t/x")
    d = resolve_key(f"v2/artifacts/p2/{RUN_ID}/t/x")
    assert a.run_key != b.run_key and c.run_key != d.run_key


@pytest.mark.parametrize(
    ("workflow", "pipeline"),
    [
        ("iris-pipeline-7xk2p", "iris-pipeline"),
        ("xgboost-training-cm-zp9q4", "xgboost-training-cm"),
        ("my-pipeline", "my-pipeline"),  # "pipeline" is 8 chars: no Argo suffix
        ("iris-pipeline-7XK2P", "iris-pipeline-7XK2P"),  # Argo suffixes are lower case
        ("iris-pipeline-7xk2", "iris-pipeline-7xk2"),
        ("abcde", "abcde"),
        ("-abcde", "-abcde"),  # nothing left before the suffix
        ("hello world-7xk2p", "hello world"),
    ],
)
def test_v1_pipeline_is_workflow_without_argo_suffix(workflow, pipeline):
    got = resolve_key(f"artifacts/{workflow}/{workflow}-1/out.tgz")
    assert (got.layout, got.run_name, got.pipeline) == ("kfp_v1", workflow, pipeline)


@pytest.mark.parametrize("day", ["2026/13/01", "2026/11/31", "2026/02/29", "2026/00/10", "0000/01/01"])
def test_impossible_dates_do_not_match_the_dated_layouts(day):
    key = f"artifacts/{WF}/{day}/{POD}/out.tgz"
    with pytest.raises(UnresolvableKey) as excinfo:
        resolve_key(key, ["kfp_v1_dated"])
    assert f"kfp_v1_dated: {day} is not a date" in str(excinfo.value)
    with pytest.raises(UnresolvableKey, match="is not a date"):
        resolve_key(f"private-artifacts/{NS}/{WF}/{day}/{POD}/out.tgz", ["kfp_v1_private"])
    # With the default layouts it does not fall through to the generic layout either:
    # that would make a run named "artifacts".
    with pytest.raises(UnresolvableKey, match="a Kubeflow folder"):
        resolve_key(key)


def test_leap_day_is_a_date():
    assert resolve_key(f"artifacts/{WF}/2028/02/29/{POD}/out.tgz").layout == "kfp_v1_dated"


@pytest.mark.parametrize(
    ("key", "layout", "step", "artifact"),
    [
        (f"artifacts/{WF}/2026/11/29/{POD}/roc.csv", "kfp_v1_dated", POD, "roc.csv"),
        (f"artifacts/{WF}/2026/11/29/{POD}/plots/confusion.png", "kfp_v1_dated", POD, "plots/confusion.png"),
        (f"private-artifacts/{NS}/{WF}/2026/11/29/{POD}/report.html", "kfp_v1_private", POD, "report.html"),
        (f"artifacts/{WF}/{POD}/notes.txt", "kfp_v1", POD, "notes.txt"),
    ],
)
def test_any_file_in_a_kfp_v1_step_folder_belongs_to_that_run_and_step(key, layout, step, artifact):
    """A KFP v1 step writes a roc.csv beside its .tgz outputs (its metadata points at it):
    it belongs to the workflow's run, never to a generic run named "artifacts"."""
    resolved = resolve_key(key)
    assert (resolved.layout, resolved.step_name, resolved.artifact_name) == (layout, step, artifact)
    assert resolved.run_name == WF and resolved.run_key.endswith(WF)


@pytest.mark.parametrize(
    "key",
    [
        "artifacts/lonely.txt",
        "artifacts/wf/x.csv",
        "v2/artifacts/pipe/only-run",
        "v2/notes/a/b.txt",
        "private-artifacts/ns/file.txt",
    ],
)
def test_keys_under_a_kubeflow_folder_never_become_a_generic_run(key):
    with pytest.raises(UnresolvableKey, match="a Kubeflow folder"):
        resolve_key(key)
    # A bucket that uses only the generic layout keeps its own meaning of the folders.
    assert resolve_key("artifacts/wf/x.csv", ["generic"]).run_key == "artifacts"


def test_first_matching_layout_in_the_given_order_wins():
    key = f"artifacts/{WF}/{POD}/out.tgz"
    # Kubeflow's folders are reserved for its layouts whenever one is chosen, in any order.
    assert resolve_key(key, ["generic", "kfp_v1"]).layout == "kfp_v1"
    assert resolve_key(key, ["generic"]) == ResolvedKey(
        "generic", "artifacts", "artifacts", WF, f"{POD}/out.tgz"
    )
    assert resolve_key(key, ["kfp_v1", "generic"]).layout == "kfp_v1"
    assert resolve_key(key, ("kfp_v2", "kfp_v1")).layout == "kfp_v1"


def test_private_v2_is_not_mistaken_for_private_v1_or_generic():
    key = f"private-artifacts/{NS}/v2/artifacts/p/{RUN_ID}/t/out"
    assert resolve_key(key).layout == "kfp_v2_private"
    assert resolve_key(key, ["kfp_v2", "generic"]).layout == "generic"


@pytest.mark.parametrize(
    ("key", "run", "step", "artifact"),
    [
        ("my run/step one/final report.html", "my run", "step one", "final report.html"),
        ("a+b/c+d/x+y=z.csv", "a+b", "c+d", "x+y=z.csv"),
        ("100%/50%25/%2F.txt", "100%", "50%25", "%2F.txt"),
        ("läufe/schritt-ü/データ/模型 ✓.json", "läufe", "schritt-ü", "データ/模型 ✓.json"),
        (
            "r/s/" + "/".join(f"d{i}" for i in range(40)) + "/leaf.bin",
            "r",
            "s",
            "/".join(f"d{i}" for i in range(40)) + "/leaf.bin",
        ),
    ],
)
def test_generic_keys_keep_special_characters(key, run, step, artifact):
    assert resolve_key(key) == ResolvedKey("generic", run, run, step, artifact)


def test_v2_keys_keep_special_characters():
    got = resolve_key(f"v2/artifacts/iris training+/{RUN_ID}/train model/{EXEC}/out put/ü 100%.csv")
    assert got == ResolvedKey(
        "kfp_v2",
        f"v2/artifacts/iris training+/{RUN_ID}",
        RUN_ID,
        "train model",
        "out put/ü 100%.csv",
        pipeline="iris training+",
    )


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "key is empty"),
        ("run/file", "matches none of the layouts"),
        ("single", "matches none of the layouts"),
        ("a//b/c", "empty path segment"),
        ("/a/b/c", "empty path segment"),
        ("a/b/c/", "empty path segment"),
        ("a/./c", "'.' or '..' path segment"),
        ("a/b/../../etc/passwd", "'.' or '..' path segment"),
        ("run/step/..", "'.' or '..' path segment"),
        ("run/step/a\x00b", "control character"),
        ("run/step/a\nb", "control character"),
        ("run/step/a\tb", "control character"),
        ("run/step/a\x7fb", "control character"),
        ("run/step/a\x85b", "control character"),
        ("run/step/a\ud800b", "not valid Unicode"),
        ("r/s/" + "x" * 1021, "1025 bytes long, over the 1024 byte limit"),
        ("r/s/" + "é" * 511, "1026 bytes long, over the 1024 byte limit"),
    ],
)
def test_malformed_or_unmatched_keys_are_unresolvable(key, reason):
    with pytest.raises(UnresolvableKey) as excinfo:
        resolve_key(key)
    assert reason in str(excinfo.value)


def test_no_match_message_lists_the_layouts_tried():
    with pytest.raises(UnresolvableKey) as excinfo:
        resolve_key("run/step/file.txt", ["kfp_v1", "kfp_v2"])
    assert str(excinfo.value) == "key 'run/step/file.txt' matches none of the layouts kfp_v1, kfp_v2"


def test_key_of_exactly_1024_bytes_is_accepted():
    key = "r/s/" + "é" * 510
    assert len(key.encode()) == 1024
    assert resolve_key(key).artifact_name == "é" * 510


def test_non_string_key_is_unresolvable():
    with pytest.raises(UnresolvableKey, match="key must be a string"):
        resolve_key(b"run/step/file")  # type: ignore[arg-type]


def test_unresolvable_key_is_a_value_error():
    assert issubclass(UnresolvableKey, ValueError)


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        (["kfp_v1", "kfp_v3"], "unknown layout 'kfp_v3'"),
        (["Generic"], "unknown layout 'Generic'"),
        ("generic", "not the string 'generic'"),
        ([], "at least one layout"),
        (["kfp_v1", "generic", "kfp_v1"], "layout 'kfp_v1' is listed twice"),
    ],
)
def test_validate_layout_names_rejects_bad_lists(names, reason):
    with pytest.raises(ValueError) as excinfo:
        validate_layout_names(names)
    assert reason in str(excinfo.value)
    assert not isinstance(excinfo.value, UnresolvableKey)


def test_validate_layout_names_accepts_known_names():
    validate_layout_names(LAYOUT_NAMES)
    validate_layout_names(["generic"])
    validate_layout_names(("kfp_v2", "kfp_v1"))


def test_unknown_layout_in_resolve_key_is_a_plain_value_error():
    with pytest.raises(ValueError) as excinfo:
        resolve_key("run/step/file", ["generic", "nope"])
    assert not isinstance(excinfo.value, UnresolvableKey)
    assert "unknown layout 'nope'" in str(excinfo.value)
    assert "known layouts: kfp_v1_private, kfp_v2_private" in str(excinfo.value)


_KUBEFLOW_FOLDERS = {"artifacts", "private-artifacts", "v2", ""}
_ANY_EXTENSION = ("roc.csv", "model.parquet", "report.html", "notes", "weights.bin", "a/b/c.json", "x.tar.gz")


@pytest.mark.parametrize("name", _ANY_EXTENSION)
@pytest.mark.parametrize(
    ("template", "layout", "run_name", "step"),
    [
        (f"artifacts/{WF}/2026/11/29/{POD}/{{}}", "kfp_v1_dated", WF, POD),
        (f"private-artifacts/{NS}/{WF}/2026/11/29/{POD}/{{}}", "kfp_v1_private", WF, POD),
        (f"v2/artifacts/iris/{RUN_ID}/train/{EXEC}/{{}}", "kfp_v2", RUN_ID, "train"),
        (
            f"private-artifacts/{NS}/v2/artifacts/iris/{RUN_ID}/train/{EXEC}/{{}}",
            "kfp_v2_private",
            RUN_ID,
            "train",
        ),
    ],
)
def test_no_run_is_named_after_a_kubeflow_folder_whatever_the_file(template, layout, run_name, step, name):
    """Issue 10 item 5: realistic v1 and v2 keys of any extension resolve to their Kubeflow
    run and step, never to a run named after a layout's fixed folder."""
    resolved = resolve_key(template.format(name))
    assert resolved.layout == layout
    assert resolved.run_name not in _KUBEFLOW_FOLDERS and resolved.run_name == run_name
    assert resolved.run_key.split("/")[0] in ("artifacts", "private-artifacts", "v2")
    assert resolved.step_name == step
