"""Tests for runs/compare_match.py: match keys, image series, better metrics, URL parameters."""

from __future__ import annotations

import random
import string
import uuid

import pytest

from runs.compare_match import (
    CompareInputError,
    best_index,
    group_series,
    lower_is_better,
    match_key,
    parse_pairs,
    parse_run_ids,
    series_of,
    unique_keys,
)
from runs.layouts import resolve_key

# --- match keys ------------------------------------------------------------------------


def key_of(object_key: str) -> str:
    where = resolve_key(object_key)
    return match_key(
        step_name=where.step_name,
        artifact_name=where.artifact_name,
        run_name=where.run_name,
        layout=where.layout,
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # KFP v1, Argo <= 3.3 pod names: <workflow>-<node id>; only the file name is left
        (
            "artifacts/iris-pipeline-7xk2p/2026/11/29/iris-pipeline-7xk2p-3301820553/train-roc.tgz",
            "artifacts/iris-pipeline-q9z8a/2026/11/30/iris-pipeline-q9z8a-1189022117/train-roc.tgz",
            "train-roc.tgz",
        ),
        # Argo >= 3.4: <workflow>-<template>-<node id>; the template is the step
        (
            "artifacts/iris-pipeline-7xk2p/iris-pipeline-7xk2p-train-3301820553/mlpipeline-metrics.tgz",
            "artifacts/iris-pipeline-abcde/iris-pipeline-abcde-train-42424242/mlpipeline-metrics.tgz",
            "train/mlpipeline-metrics.tgz",
        ),
        # private v1
        (
            "private-artifacts/ns-a/wf-aaaaa/2026/11/29/wf-aaaaa-evaluate-111111/roc.csv",
            "private-artifacts/ns-b/wf-bbbbb/2026/11/29/wf-bbbbb-evaluate-222222/roc.csv",
            "evaluate/roc.csv",
        ),
        # KFP v2 with execution UUIDs (dropped by the layout) and different run ids
        (
            f"v2/artifacts/iris/{uuid.uuid4()}/train-model/{uuid.uuid4()}/metrics",
            f"v2/artifacts/iris/{uuid.uuid4()}/train-model/{uuid.uuid4()}/metrics",
            "train-model/metrics",
        ),
        # KFP v2 with a numeric MLMD execution id below the task
        (
            f"v2/artifacts/iris/{uuid.uuid4()}/evaluate/1234/confusion_matrix",
            f"v2/artifacts/iris/{uuid.uuid4()}/evaluate/98/confusion_matrix",
            "evaluate/confusion_matrix",
        ),
        # a UUID in a file name
        (
            f"v2/artifacts/iris/{uuid.uuid4()}/report/report-{uuid.uuid4()}.html",
            f"v2/artifacts/iris/{uuid.uuid4()}/report/report-{uuid.uuid4()}.html",
            "report/report-*.html",
        ),
        # generic layout: the user's own names, kept as they are
        ("exp-1/train/roc.csv", "exp-2/train/roc.csv", "train/roc.csv"),
        ("exp-1/images/epoch_003.png", "exp-22/images/epoch_003.png", "images/epoch_003.png"),
    ],
)
def test_runs_random_parts_are_out_of_the_match(a, b, expected):
    assert key_of(a) == key_of(b) == expected


def test_different_steps_and_files_stay_apart():
    assert key_of("exp-1/train/roc.csv") != key_of("exp-1/evaluate/roc.csv")
    assert key_of("exp-1/train/roc.csv") != key_of("exp-1/train/roc2.csv")
    # a numeric folder in a generic run is the user's, not an execution id
    assert key_of("exp-1/train/7/roc.csv") == "train/7/roc.csv"


def test_repeated_keys_in_one_run_are_numbered_in_order():
    assert unique_keys(["a", "b", "a", "a"]) == ["a", "b", "a#2", "a#3"]


def test_a_re_paired_artifact_takes_its_key_and_the_one_it_displaces_moves_on():
    # position 1 ("a2") is paired by hand with "a": the artifact that was "a" becomes "a#2"
    assert unique_keys(["a", "a2", "b"], fixed={1: "a"}) == ["a#2", "a", "b"]
    assert unique_keys(["a", "a", "x"], fixed={2: "a#2"}) == ["a", "a#3", "a#2"]
    with pytest.raises(CompareInputError, match="same match key"):
        unique_keys(["a", "b", "c"], fixed={0: "k", 1: "k"})


def _random_segment(rng: random.Random) -> str:
    # Starts with a letter: a v2 output folder named only by digits cannot be told from a
    # numeric execution id (docs/compare.md says so); a re-pairing fixes that rare case.
    return (
        "f"
        + "".join(
            rng.choice(string.ascii_lowercase + string.digits + "-_.") for _ in range(rng.randint(1, 12))
        ).strip(".")
        or "x"
    )


def test_match_keys_do_not_depend_on_the_run_property():
    """Property: for random step templates and files, any two KFP v1 runs (any workflow suffix,
    any node ids) and any two v2 runs (any run and execution ids) give the same keys."""
    rng = random.Random(13)
    for _ in range(500):
        template = rng.choice(["train", "evaluate-model", "prep", "a-b-c"])
        file = "/".join(_random_segment(rng) for _ in range(rng.randint(1, 3)))
        keys = set()
        for _run in range(2):
            suffix = "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            wf = f"my-pipe-{suffix}"
            node = rng.randint(1000, 9_999_999_999)
            keys.add(key_of(f"artifacts/{wf}/2026/11/29/{wf}-{template}-{node}/{file}"))
        assert len(keys) == 1, (template, file, keys)
        keys = set()
        for _run in range(2):
            execution = rng.choice([str(uuid.uuid4()), str(rng.randint(1, 10**9))])
            keys.add(key_of(f"v2/artifacts/pipe/{uuid.uuid4()}/{template}/{execution}/{file}"))
        assert len(keys) == 1, (template, file, keys)


def test_match_keys_never_fail_on_random_names():
    rng = random.Random(7)
    for _ in range(2000):
        step = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 30)))
        name = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 60)))
        run = "".join(rng.choice(string.printable) for _ in range(rng.randint(0, 20)))
        layout = rng.choice(["", "generic", "kfp_v1", "kfp_v2", "kfp_v1_private", "kfp_v2_private"])
        key = match_key(step_name=step, artifact_name=name, run_name=run, layout=layout)
        assert isinstance(key, str)


# --- image series ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "series", "index"),
    [
        ("samples/epoch_003.png", "samples/epoch_{n}.png", 3),
        ("step-10.png", "step-{n}.png", 10),
        ("train/img0007_pred.jpg", "train/img{n}_pred.jpg", 7),
        ("plots/confusion.png", "plots/confusion.png", None),
        ("v2/model_v2/epoch9", "v2/model_v2/epoch{n}", 9),
    ],
)
def test_series_of(key, series, index):
    member = series_of(key)
    assert (member.series, member.index) == (series, index)


def test_group_series_sorts_by_number_and_keeps_lone_files_alone():
    keys = ["s/epoch_10.png", "s/epoch_2.png", "s/epoch_1.png", "s/model_v2.png", "s/loss.png"]
    assert group_series(keys) == {
        "s/epoch_{n}.png": [(1, "s/epoch_1.png"), (2, "s/epoch_2.png"), (10, "s/epoch_10.png")],
        "s/loss.png": [(None, "s/loss.png")],
        "s/model_v2.png": [(None, "s/model_v2.png")],
    }


def test_group_series_keeps_every_key_once():
    rng = random.Random(3)
    keys = {
        f"d{rng.randint(0, 3)}/{rng.choice(['epoch', 'step-', 'x'])}{rng.randint(0, 50)}.png"
        for _ in range(200)
    }
    grouped = group_series(keys)
    flat = [k for members in grouped.values() for _, k in members]
    assert sorted(flat) == sorted(keys)


# --- metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "lower"),
    [
        ("accuracy", False),
        ("roc-auc", False),
        ("f1_score", False),
        ("loss", True),
        ("val_loss", True),
        ("test-mse", True),
        ("RMSE", True),
        ("mean absolute error", True),
        ("MAE", True),
        ("error_rate", True),
        ("terror", False),  # not the word "error"
        ("AUC", False),
    ],
)
def test_lower_is_better(name, lower):
    assert lower_is_better(name) is lower


def test_best_index():
    assert best_index([0.9, 0.95, None], lower=False) == {1}
    assert best_index([0.9, 0.95, 0.8], lower=True) == {2}
    assert best_index([0.9, 0.9, 0.8], lower=False) == {0, 1}
    assert best_index([0.9, 0.9], lower=False) == set()  # the same everywhere
    assert best_index([0.9, None], lower=False) == set()  # one run alone is not "best"


# --- URL parameters -----------------------------------------------------------------------


def test_parse_run_ids():
    assert parse_run_ids("12,15, 19") == [12, 15, 19]
    assert parse_run_ids(["12", "15"]) == [12, 15]
    assert parse_run_ids(",".join(str(i) for i in range(1, 51))) == list(range(1, 51))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Choose 2 to 50 runs"),
        ("12", "at least 2"),
        ("12,abc", "'abc' is not a run id"),
        ("12,-3", "'-3' is not a run id"),
        ("12,12", "Run 12 is listed more than once"),
        (",".join(str(i) for i in range(1, 52)), "At most 50 runs"),
    ],
)
def test_parse_run_ids_says_what_is_wrong(raw, message):
    with pytest.raises(CompareInputError, match=message):
        parse_run_ids(raw)


def test_parse_pairs():
    assert parse_pairs(["12:345=train/roc.csv"], run_ids=[12, 15]) == {(12, 345): "train/roc.csv"}
    for bad, message in [
        (["12-345=x"], "is not <run id>:<artifact id>=<match key>"),
        (["99:1=x"], "not one of the compared runs"),
        (["12:1=" + "x" * 301], "1 to 300 characters"),
        (["12:1=a", "12:1=b"], "paired twice"),
    ]:
        with pytest.raises(CompareInputError, match=message):
            parse_pairs(bad, run_ids=[12, 15])
