"""Pure rules of the compare page (docs/compare.md): which artifacts of different runs are
"the same", which files form an image series, which metric is better when lower, and the
parsing of the page's URL parameters. No Django, no I/O: unit-tested in
tests/runs/test_compare_match.py.

Matching: an artifact's *match key* is ``<step>/<artifact path>`` with Kubeflow's
per-run random parts taken out, so the ROC curve of ``train`` in run 12 meets the ROC
curve of ``train`` in run 15:

- KFP v1 pods are ``<workflow>-<node id>`` (Argo ≤ 3.3) or ``<workflow>-<template>-<node
  id>`` (Argo ≥ 3.4); the workflow name is the run's own name (``<pipeline>-<5 random
  chars>``) and the node id a number: both go, ``train`` stays (or nothing, for the
  old naming: then the artifact path alone decides);
- KFP v2 execution folders (a UUID, or a numeric MLMD execution id, right below the
  task) go; the layouts already drop the UUID form (runs/layouts.py);
- a UUID anywhere else in the step or path, and (in Kubeflow layouts) the run's own
  name, become ``*``. Other layouts' names are the user's own and are kept as they are.

Two artifacts of one run with the same key (two v1 steps both writing
``mlpipeline-ui-metadata.tgz``) get ``#2``, ``#3``… in the run's step order; the user can
re-pair by hand when that guess, or any other, is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

MIN_RUNS = 2
MAX_RUNS = 50
MAX_KEY_CHARS = 300

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_NODE_ID = re.compile(r"-[0-9]{4,}$")  # Argo's pod node id: a hash printed as a decimal number
_NUMERIC = re.compile(r"[0-9]+")
_V2_LAYOUTS = ("kfp_v2", "kfp_v2_private")
_V1_LAYOUTS = ("kfp_v1", "kfp_v1_dated", "kfp_v1_private")
_KFP_LAYOUTS = _V1_LAYOUTS + _V2_LAYOUTS


def step_match_name(step_name: str, *, run_name: str = "", layout: str = "") -> str:
    """The step's name without the run's random parts (see the module docstring)."""
    name = step_name
    if layout in _V1_LAYOUTS:
        if run_name and name.startswith(run_name + "-"):
            name = name[len(run_name) + 1 :]
        elif run_name and name == run_name:
            name = ""
        name = _NODE_ID.sub("", name)
        if _NUMERIC.fullmatch(name):  # "<workflow>-<node id>": the old naming, no template name
            name = ""
    name = _UUID.sub("*", name)
    if layout in _KFP_LAYOUTS and run_name:
        name = name.replace(run_name, "*")
    return name


def artifact_match_path(artifact_name: str, *, run_name: str = "", layout: str = "") -> str:
    """The artifact's path below its step without the run's random parts."""
    parts = artifact_name.split("/")
    if (
        layout in _V2_LAYOUTS
        and len(parts) > 1
        and (_NUMERIC.fullmatch(parts[0]) or _UUID.fullmatch(parts[0]))
    ):
        parts = parts[1:]  # the execution folder right below the task
    parts = [p for p in parts if not _UUID.fullmatch(p)] or parts[-1:]
    path = "/".join(_UUID.sub("*", p) for p in parts)
    if layout in _KFP_LAYOUTS and run_name:
        path = path.replace(run_name, "*")
    return path


def match_key(*, step_name: str, artifact_name: str, run_name: str = "", layout: str = "") -> str:
    """``<step>/<path>`` with the random parts out (``<path>`` alone when no step name is left)."""
    step = step_match_name(step_name, run_name=run_name, layout=layout)
    path = artifact_match_path(artifact_name, run_name=run_name, layout=layout)
    return f"{step}/{path}" if step else path


def unique_keys(keys: Sequence[str], *, fixed: dict[int, str] | None = None) -> list[str]:
    """The keys of one run's artifacts (in the run's step order), repeats numbered ``#2``, ``#3``…

    ``fixed`` (position → key) are the user's re-pairings: those artifacts get exactly that
    key, and an artifact whose own key it was moves on to the next free number, so a
    re-paired artifact never hides another one."""
    fixed = fixed or {}
    if len(set(fixed.values())) < len(fixed):
        raise CompareInputError("Two artifacts of one run are paired with the same match key.")
    taken = set(fixed.values())
    seen: dict[str, int] = {}
    out = []
    for i, key in enumerate(keys):
        if i in fixed:
            out.append(fixed[i])
            continue
        n = seen.get(key, 0)
        while True:
            n += 1
            candidate = key if n == 1 else f"{key}#{n}"
            if candidate not in taken:
                break
        seen[key] = n
        taken.add(candidate)
        out.append(candidate)
    return out


# --- image series ------------------------------------------------------------------
# "epoch_003.png", "step-10.png", "samples/epoch3.jpg", "img_0007.png": the last number of the
# file name (before the extension) is its place in the series; the rest is the series' name.
_SERIES = re.compile(r"^(?P<head>.*?)(?P<num>[0-9]+)(?P<tail>[^0-9/]*)$")


@dataclass(frozen=True, slots=True)
class SeriesMember:
    series: str  # the key with the number replaced by "{n}" (or the key itself: a series of one)
    index: int | None  # the number in the name, None for a file outside any series


def series_of(key: str) -> SeriesMember:
    """Which series an image key belongs to and its place in it (no number: a series of one)."""
    directory, _slash, base = key.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    match = _SERIES.match(stem)
    if match is None:
        return SeriesMember(series=key, index=None)
    name = f"{match['head']}{{n}}{match['tail']}" + (f".{ext}" if dot else "")
    return SeriesMember(series=f"{directory}/{name}" if directory else name, index=int(match["num"]))


def group_series(keys: Iterable[str]) -> dict[str, list[tuple[int | None, str]]]:
    """Keys grouped by series, each series sorted by its number: ``{series: [(n, key), …]}``.

    A numbered name alone in its series stays a series of one under its own key, so a
    lone ``model_v2.png`` is not shown as a one-step slider.
    """
    groups: dict[str, list[tuple[int | None, str]]] = {}
    for key in keys:
        member = series_of(key)
        groups.setdefault(member.series, []).append((member.index, key))
    out: dict[str, list[tuple[int | None, str]]] = {}
    for series, members in groups.items():
        if len(members) == 1:
            out[members[0][1]] = [(None, members[0][1])]
        else:
            out[series] = sorted(members, key=lambda m: (m[0] is None, m[0] or 0, m[1]))
    return dict(sorted(out.items()))


# --- metrics --------------------------------------------------------------------------
_LOWER_IS_BETTER = re.compile(
    r"(?:^|[^a-z])(loss|error|err|mse|mae|rmse|mape|logloss|perplexity|latency|time|duration|fpr|fnr)"
    r"(?:$|[^a-z])",
    re.IGNORECASE,
)


def lower_is_better(metric_name: str) -> bool:
    """Whether a smaller value of ``metric_name`` is the better one: names holding the word
    loss, error, err, mse, mae, rmse, mape, logloss, perplexity, latency, time, duration,
    fpr or fnr (as a word: ``val_loss``, ``test-mse``, ``error rate``); higher is better
    for every other name (accuracy, auc, f1, …)."""
    return bool(_LOWER_IS_BETTER.search(metric_name.replace("_", " ")))


def best_index(values: Sequence[float | None], *, lower: bool) -> set[int]:
    """Positions of the best value (all of them on a tie); empty when fewer than two runs have one."""
    present = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(present) < 2:
        return set()
    target = min(v for _, v in present) if lower else max(v for _, v in present)
    if all(v == target for _, v in present):
        return set()  # the same everywhere: nothing is better
    return {i for i, v in present if v == target}


# --- URL parameters -----------------------------------------------------------------------


class CompareInputError(ValueError):
    """A ``runs`` or ``pair`` parameter the page cannot use; ``str(exc)`` says why, for the user."""


def parse_run_ids(raw: str | Sequence[str]) -> list[int]:
    """``"12,15,19"`` (or several ``runs`` parameters) → ``[12, 15, 19]``, 2 to 50 distinct ids."""
    values = [raw] if isinstance(raw, str) else list(raw)
    parts = [p.strip() for value in values for p in value.split(",") if p.strip()]
    if not parts:
        raise CompareInputError(f"Choose {MIN_RUNS} to {MAX_RUNS} runs to compare (?runs=12,15,19).")
    ids = []
    for part in parts:
        if not _NUMERIC.fullmatch(part) or len(part) > 18:
            raise CompareInputError(f"{part[:40]!r} is not a run id; run ids are whole numbers.")
        ids.append(int(part))
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise CompareInputError(f"Run {repeated[0]} is listed more than once.")
    if len(ids) < MIN_RUNS:
        raise CompareInputError(f"Choose at least {MIN_RUNS} runs to compare; {len(ids)} given.")
    if len(ids) > MAX_RUNS:
        raise CompareInputError(f"At most {MAX_RUNS} runs can be compared at once; {len(ids)} given.")
    return ids


_PAIR = re.compile(r"^(?P<run>[0-9]{1,18}):(?P<artifact>[0-9]{1,18})=(?P<key>.+)$", re.DOTALL)


def parse_pairs(raw: Sequence[str], *, run_ids: Sequence[int]) -> dict[tuple[int, int], str]:
    """``["12:345=train/roc.csv", …]`` → ``{(run, artifact): key}``: the user's re-pairings.

    Checks the shape only (the run must be one of the compared); whether the artifact
    belongs to that run is the selector's question."""
    pairs: dict[tuple[int, int], str] = {}
    for value in raw:
        match = _PAIR.match(value.strip())
        if match is None:
            raise CompareInputError(
                f"pair={value[:60]!r} is not <run id>:<artifact id>=<match key> (e.g. 12:345=train/roc.csv)."
            )
        run, artifact, key = int(match["run"]), int(match["artifact"]), match["key"].strip()
        if run not in run_ids:
            raise CompareInputError(
                f"pair={value[:60]!r} names run {run}, which is not one of the compared runs."
            )
        if not key or len(key) > MAX_KEY_CHARS:
            raise CompareInputError(
                f"pair={value[:60]!r}: the match key must be 1 to {MAX_KEY_CHARS} characters."
            )
        if (run, artifact) in pairs:
            raise CompareInputError(f"Artifact {artifact} of run {run} is paired twice.")
        pairs[(run, artifact)] = key
    return pairs
