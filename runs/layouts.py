"""Object key -> run, step and artifact, for the key layouts pipelines write.

Second stage of the ingest flow in docs/architecture.md. A bucket lists the
layouts to try, in order; the first that matches wins. Layouts are data
(``LAYOUTS`` below): adding one is adding a row, not another ``if``.
Pure: no Django, no I/O.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

__all__ = [
    "DEFAULT_LAYOUTS",
    "LAYOUT_NAMES",
    "LAYOUTS",
    "Layout",
    "ResolvedKey",
    "UnresolvableKey",
    "resolve_key",
    "validate_layout_names",
]

# S3's own limit on key length, in UTF-8 bytes.
MAX_KEY_BYTES = 1024


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    """Where an object belongs: which run, which step, which artifact of the step."""

    layout: str  # name of the layout that matched
    run_key: str  # unique per bucket; identifies the run
    run_name: str  # display name (workflow name, run id, ...)
    step_name: str
    artifact_name: str  # path of the artifact below the step (may contain "/")
    pipeline: str = ""
    namespace: str = ""


class UnresolvableKey(ValueError):
    """The key fits none of the bucket's layouts; ``str(exc)`` says why."""


@dataclass(frozen=True, slots=True)
class Layout:
    """One key layout: a regex with named groups and which group feeds which field.

    ``run_key`` is a ``str.format`` template over the groups. It never uses
    the date folders, so a KFP v1 run that writes on both sides of midnight
    stays one run. Groups ``year``/``month``/``day``, when present, must form
    a real date or the layout does not match.
    """

    name: str
    pattern: re.Pattern[str]
    run_key: str
    run_name: str  # group names from here on; "" means the field stays empty
    step_name: str
    artifact_name: str
    pipeline: str = ""
    namespace: str = ""
    # KFP v1 workflow names are "<pipeline>-<5 random chars>" (Argo's
    # generateName); the pipeline is the name without that suffix.
    pipeline_strips_argo_suffix: bool = False
    # The fixed folder every key of this layout starts with ("" for generic). A
    # key under a chosen layout's fixed folder never falls through to the generic
    # layout: that would make a run named "artifacts" or "v2" (docs/inputs.md).
    fixed_prefix: str = ""


_SEG = r"[^/]+"
_DATE = r"(?P<year>[0-9]{4})/(?P<month>[0-9]{2})/(?P<day>[0-9]{2})"
# KFP v1 stores each output as "<name>.tgz" and Argo archives the log as main.log,
# but a step may write any file into its pod folder (a roc.csv that its
# mlpipeline-ui-metadata points at): every file below the pod folder belongs to
# that run and step. The undated (<= 1.6) layout has no date folders to anchor
# on, so there the file is one segment, or a date-looking key would match it.
_V1_FILE = r"(?P<file>.+)"
_V1_UNDATED_FILE = r"(?P<file>[^/]+)"
# KFP >= 2.4 inserts the execution's UUID between task and output; earlier
# versions do not, so the UUID folder is optional and must look like a UUID
# (otherwise an output folder would be mistaken for it).
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_V2_TAIL = rf"v2/artifacts/(?P<pipeline>{_SEG})/(?P<run>{_SEG})/(?P<task>{_SEG})/(?:{_UUID}/)?(?P<file>.+)"


def _layout(name: str, regex: str, **fields) -> Layout:
    return Layout(name=name, pattern=re.compile(regex), **fields)


_V1 = dict(
    run_name="workflow",
    step_name="pod",
    artifact_name="file",
    pipeline="workflow",
    pipeline_strips_argo_suffix=True,
)
_V2 = dict(run_name="run", step_name="task", artifact_name="file", pipeline="pipeline")

# Default order matters: private before plain, dated before undated, and
# generic last because it matches nearly anything with three segments.
LAYOUTS: tuple[Layout, ...] = (
    _layout(
        "kfp_v1_private",
        rf"private-artifacts/(?P<namespace>{_SEG})/(?P<workflow>{_SEG})/{_DATE}/(?P<pod>{_SEG})/{_V1_FILE}",
        run_key="private-artifacts/{namespace}/{workflow}",
        namespace="namespace",
        fixed_prefix="private-artifacts/",
        **_V1,
    ),
    _layout(
        "kfp_v2_private",
        rf"private-artifacts/(?P<namespace>{_SEG})/{_V2_TAIL}",
        run_key="private-artifacts/{namespace}/v2/artifacts/{pipeline}/{run}",
        namespace="namespace",
        fixed_prefix="private-artifacts/",
        **_V2,
    ),
    _layout(
        "kfp_v1_dated",
        rf"artifacts/(?P<workflow>{_SEG})/{_DATE}/(?P<pod>{_SEG})/{_V1_FILE}",
        run_key="artifacts/{workflow}",
        fixed_prefix="artifacts/",
        **_V1,
    ),
    _layout(
        "kfp_v1",
        rf"artifacts/(?P<workflow>{_SEG})/(?P<pod>{_SEG})/{_V1_UNDATED_FILE}",
        run_key="artifacts/{workflow}",
        fixed_prefix="artifacts/",
        **_V1,
    ),
    _layout("kfp_v2", _V2_TAIL, run_key="v2/artifacts/{pipeline}/{run}", fixed_prefix="v2/", **_V2),
    _layout(
        "generic",
        rf"(?P<run>{_SEG})/(?P<step>{_SEG})/(?P<file>.+)",
        run_key="{run}",
        run_name="run",
        step_name="step",
        artifact_name="file",
    ),
)
_BY_NAME: dict[str, Layout] = {layout.name: layout for layout in LAYOUTS}

LAYOUT_NAMES: tuple[str, ...] = tuple(_BY_NAME)
DEFAULT_LAYOUTS: tuple[str, ...] = LAYOUT_NAMES

_ARGO_SUFFIX = re.compile(r"[a-z0-9]{5}")
# C0, DEL and C1 controls: never part of a sane artifact name, and they
# break logs, headers and terminals that show the key.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def validate_layout_names(names: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the first unknown (or repeated) layout name."""
    if isinstance(names, str):  # a str is a Sequence[str] too, one letter at a time
        raise ValueError(f"layouts must be a list of names, not the string {names!r}")
    if not names:
        raise ValueError("at least one layout is needed")
    seen: set[str] = set()
    for name in names:
        if name not in _BY_NAME:
            raise ValueError(f"unknown layout {name!r}; known layouts: {', '.join(LAYOUT_NAMES)}")
        if name in seen:
            raise ValueError(f"layout {name!r} is listed twice")
        seen.add(name)


def resolve_key(key: str, layouts: Sequence[str] = DEFAULT_LAYOUTS) -> ResolvedKey:
    """Resolve ``key`` with the first matching layout of ``layouts``.

    Raises ``ValueError`` for an unknown layout name (a configuration error)
    and ``UnresolvableKey`` when the key is malformed or no layout matches.
    """
    if isinstance(layouts, str):
        validate_layout_names(layouts)  # raises: a string is not a list of names
    chosen, fixed_prefixes = _chosen(tuple(layouts))
    _check_key(key)
    reasons = []
    reserved = ""
    if key.startswith(fixed_prefixes):  # one C call for the usual answer
        reserved = next(prefix for prefix in fixed_prefixes if key.startswith(prefix))
    for layout in chosen:
        name = layout.name
        if reserved and not layout.fixed_prefix:
            reasons.append(
                f"{name}: the key is under {reserved!r}, a Kubeflow folder, "
                f"but fits none of the Kubeflow layouts"
            )
            continue
        match = layout.pattern.fullmatch(key)
        if match is None:
            continue
        groups = match.groupdict()
        if "year" in groups and not _is_date(groups["year"], groups["month"], groups["day"]):
            reasons.append(f"{name}: {groups['year']}/{groups['month']}/{groups['day']} is not a date")
            continue
        return _resolved(layout, groups)
    detail = f" ({'; '.join(reasons)})" if reasons else ""
    raise UnresolvableKey(f"key {key!r} matches none of the layouts {', '.join(layouts)}{detail}")


@functools.lru_cache(maxsize=64)
def _chosen(names: tuple[str, ...]) -> tuple[tuple[Layout, ...], tuple[str, ...]]:
    """The validated layouts for ``names`` and their fixed prefixes, in order; cached,
    as every key of a bucket asks again."""
    validate_layout_names(names)
    chosen = tuple(_BY_NAME[name] for name in names)
    return chosen, tuple(layout.fixed_prefix for layout in chosen if layout.fixed_prefix)


def _check_key(key: str) -> None:
    if not isinstance(key, str):
        raise UnresolvableKey(f"key must be a string, not {type(key).__name__}")
    if not key:
        raise UnresolvableKey("key is empty")
    if _CONTROL.search(key):
        raise UnresolvableKey(f"key {key!r} contains a control character")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise UnresolvableKey(f"key {key!r} is not valid Unicode") from None
    if size > MAX_KEY_BYTES:
        raise UnresolvableKey(f"key is {size} bytes long, over the {MAX_KEY_BYTES} byte limit")
    segments = key.split("/")
    if "" in segments:
        raise UnresolvableKey(f"key {key!r} has an empty path segment")
    if "." in segments or ".." in segments:
        # A "." or ".." would make two keys show as the same path, or climb
        # out of a run when the name is used as a path.
        raise UnresolvableKey(f"key {key!r} has a '.' or '..' path segment")


def _is_date(year: str, month: str, day: str) -> bool:
    try:
        date(int(year), int(month), int(day))
    except ValueError:
        return False
    return True


def _resolved(layout: Layout, groups: dict[str, str]) -> ResolvedKey:
    def field(group: str) -> str:
        return groups[group] if group else ""

    pipeline = field(layout.pipeline)
    if layout.pipeline_strips_argo_suffix:
        pipeline = _strip_argo_suffix(pipeline)
    return ResolvedKey(
        layout=layout.name,
        run_key=layout.run_key.format(**groups),
        run_name=field(layout.run_name),
        step_name=field(layout.step_name),
        artifact_name=field(layout.artifact_name),
        pipeline=pipeline,
        namespace=field(layout.namespace),
    )


def _strip_argo_suffix(workflow: str) -> str:
    # Only a trailing "-xxxxx" after a non-empty name; "-abcde" alone stays.
    head, dash, tail = workflow.rpartition("-")
    if head and dash and _ARGO_SUFFIX.fullmatch(tail):
        return head
    return workflow
