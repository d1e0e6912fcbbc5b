"""The compare page's data: 2 to 50 runs side by side, their artifacts matched (docs/compare.md).

``comparison_load`` reads everything the page shows in a constant number of queries,
whatever the number of artifacts (the access scope, the runs, their steps, their
artifacts, the current renditions with their payloads): the renditions' pre-rendered
payloads are the data, no file is read here. The pure rules (match keys, image series,
which metric is better) are in runs/compare_match.py.

A run the user may not see is reported exactly like a missing one (``RunsNotFound``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db.models import F, JSONField, TextField
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from runs import compare_match
from runs.compare_match import CompareInputError
from runs.kinds import Viewer
from runs.models import Artifact, Rendition, Run, Step
from runs.rendering.roc import lttb
from runs.selectors.access import runs_visible_to
from runs.selectors.viewers import renditions_hide_foreign


class RunsNotFound(LookupError):
    """Some of the asked runs do not exist or are not visible to the user (answered as 404)."""


@dataclass(slots=True)
class Cell:
    """One run's artifact in a matched row, with the rendition the row shows (None: not rendered yet)."""

    run_id: int
    artifact: SimpleNamespace  # run_id, pk, key, name, kind: what the viewer partials need
    rendition: Any  # the rendition's fields (a SimpleNamespace with Rendition's names), or None
    base_key: str  # the artifact's match key (what a re-pairing replaces)

    @property
    def status(self) -> str:
        return self.rendition.status if self.rendition is not None else "pending"


@dataclass(slots=True)
class Row:
    """Artifacts of the compared runs that match one key; ``cells`` has one entry per run (or None)."""

    key: str
    viewer: str
    cells: list[Cell | None]

    @property
    def differs(self) -> bool:
        return len({c.artifact.kind if c else None for c in self.cells}) > 1 or None in self.cells


@dataclass(slots=True)
class MetricRow:
    name: str
    source: str  # the matched row the metric comes from
    values: list[float | None]
    shown: list[str]
    best: set[int]
    lower_is_better: bool
    same: bool
    bars: list[dict | None]  # per run: x, width of an SVG bar (0..100 scale), or None

    @property
    def cells(self) -> list[dict]:
        return [
            {"shown": shown, "best": i in self.best, "bar": bar, "y": i * 8}
            for i, (shown, bar) in enumerate(zip(self.shown, self.bars, strict=True))
        ]


@dataclass(slots=True)
class Comparison:
    runs: list[Run]
    rows: list[Row]
    metrics: list[MetricRow] = field(default_factory=list)
    roc: list[dict] = field(default_factory=list)
    sections: dict[str, list[Row]] = field(default_factory=dict)
    tables: list[dict] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    confusion: list[dict] = field(default_factory=list)
    pairs: dict[tuple[int, int], str] = field(default_factory=dict)
    sigs: dict[str, str] = field(default_factory=dict)  # per section: changes when its content does
    unrendered: list[int] = field(default_factory=list)  # artifacts without a rendition of their version

    @property
    def seqs(self) -> dict[str, int]:
        return {str(run.pk): run.seq for run in self.runs}


_RENDITION_FIELDS = (
    "id",
    "artifact_id",
    "position",
    "viewer",
    "title",
    "status",
    "error",
    "shown_payload",
    "preview_key",
    "updated_stamp",
)
_PAGE_VIEWERS = (
    Viewer.METRICS,
    Viewer.ROC,
    Viewer.CONFUSION_MATRIX,
    Viewer.TABLE,
    Viewer.MARKDOWN,
    Viewer.WEB_APP,
    Viewer.TEXT,
    Viewer.PROGRESS,
    Viewer.IMAGE,
)


class _RenditionRow:
    """A rendition's fields under Rendition's names (what the viewer partials read): plain rows,
    not model instances, as 2,000 renditions of 20 runs cost a third less so."""

    __slots__ = (
        "id",
        "pk",
        "artifact_id",
        "position",
        "viewer",
        "title",
        "status",
        "error",
        "payload",
        "preview_key",
        "updated_stamp",
    )

    def __init__(self, rid, artifact_id, position, viewer, title, status, error, payload, preview_key, stamp):
        self.id = self.pk = rid
        self.artifact_id, self.position, self.viewer, self.title = artifact_id, position, viewer, title
        self.status, self.error, self.payload, self.preview_key = status, error, payload or {}, preview_key
        # updated_at as PostgreSQL's text: only the section signatures read it, and parsing
        # 2,000 datetimes a page was wasted.
        self.updated_stamp = stamp


_SECTION_VIEWERS = (
    Viewer.CONFUSION_MATRIX,
    Viewer.MARKDOWN,
    Viewer.WEB_APP,
    Viewer.TEXT,
    Viewer.PROGRESS,
)


def comparison_load(*, user, run_ids: list[int], pairs: dict[tuple[int, int], str]) -> Comparison:
    """Everything the compare page shows for ``run_ids`` (in that order), as ``user`` may see it.

    Raises ``RunsNotFound`` when any id is missing or invisible, ``CompareInputError`` when a
    re-pairing names an artifact that is not one of its run's."""
    found = {
        run.pk: run for run in runs_visible_to(user=user).select_related("bucket").filter(pk__in=run_ids)
    }
    missing = [rid for rid in run_ids if rid not in found]
    if missing:
        raise RunsNotFound(missing)
    runs = [found[rid] for rid in run_ids]
    column = {rid: i for i, rid in enumerate(run_ids)}
    step_order = {
        sid: (i, name)
        for i, (sid, name) in enumerate(
            Step.objects.filter(run_id__in=run_ids)
            .order_by("first_event_at", "name")
            .values_list("id", "name")
        )
    }
    artifacts = list(
        Artifact.objects.filter(run_id__in=run_ids, deleted=False).values_list(
            "id", "run_id", "step_id", "key", "name", "kind"
        )
    )
    renditions: dict[int, list[Rendition]] = {}
    # Payloads only of the viewers the page shows: the others (files without a preview, often
    # half of a run's artifacts) are listed by name, and decoding their JSON was wasted. A ROC
    # curve's full point lists are left in the database when its overlay cut is there.
    table = Rendition._meta.db_table
    shown_payload = RawSQL(
        f'CASE WHEN "{table}"."viewer" = %s AND ("{table}"."payload" -> \'overlay\') IS NOT NULL '
        f"THEN \"{table}\".\"payload\" - 'fpr' - 'tpr' - 'thresholds' "
        f'WHEN "{table}"."viewer" = ANY(%s) THEN "{table}"."payload" END',
        [Viewer.ROC, list(_PAGE_VIEWERS)],
        output_field=JSONField(),
    )
    current = [
        _RenditionRow(*values)
        for values in Rendition.objects.filter(
            artifact__run_id__in=run_ids, artifact__deleted=False, etag=F("artifact__etag")
        )
        .order_by("artifact_id", "position")
        .annotate(shown_payload=shown_payload, updated_stamp=Cast("updated_at", TextField()))
        .values_list(*_RENDITION_FIELDS)
    ]
    renditions_hide_foreign(user=user, renditions=current)
    for rendition in current:
        renditions.setdefault(rendition.artifact_id, []).append(rendition)

    known = {(run_id, aid) for aid, run_id, *_ in artifacts}
    for run_id, aid in pairs:
        if (run_id, aid) not in known:
            raise CompareInputError(f"Run {run_id} has no artifact {aid} to re-pair.")

    # Match keys, per run in its step order; repeats numbered (compare_match.unique_keys).
    artifacts.sort(key=lambda a: (a[1], step_order.get(a[2], (0, ""))[0], a[3]))
    base_keys: dict[int, str] = {}
    by_run: dict[int, list] = {}
    for a in artifacts:
        by_run.setdefault(a[1], []).append(a)
    for run in runs:
        rows = by_run.get(run.pk, [])
        keys = compare_match.unique_keys(
            [
                compare_match.match_key(
                    step_name=step_order.get(step_id, (0, ""))[1],
                    artifact_name=name,
                    run_name=run.name,
                    layout=run.layout,
                )
                for _aid, _rid, step_id, _key, name, _kind in rows
            ],
            fixed={i: pairs[(run.pk, a[0])] for i, a in enumerate(rows) if (run.pk, a[0]) in pairs},
        )
        # (The re-pair form's choices come from the matching table's cells: compare.js.)
        for (aid, *_rest), key in zip(rows, keys, strict=True):
            base_keys[aid] = key

    table: dict[str, Row] = {}
    for aid, run_id, _step_id, key, name, kind in artifacts:
        ns = SimpleNamespace(run_id=run_id, pk=aid, id=aid, key=key, name=name, kind=kind)
        items = renditions.get(aid) or [None]
        for rendition in items:
            item_key = base_keys[aid]
            if rendition is not None and len(items) > 1:
                item_key += f" › {rendition.title or rendition.viewer}"
            viewer = rendition.viewer if rendition is not None else _viewer_of_kind(kind)
            row = table.get(item_key)
            if row is not None and row.cells[column[run_id]] is not None:
                # two outputs of one file with the same title: keep both, apart
                item_key += f" #{rendition.position if rendition is not None else 0}"
                row = table.get(item_key)
            if row is None:
                row = table[item_key] = Row(key=item_key, viewer=viewer, cells=[None] * len(runs))
            row.cells[column[run_id]] = Cell(
                run_id=run_id, artifact=ns, rendition=rendition, base_key=base_keys[aid]
            )
    rows = sorted(table.values(), key=lambda r: r.key)
    comparison = Comparison(runs=runs, rows=rows, pairs=pairs)
    comparison.unrendered = [a[0] for a in artifacts if a[0] not in renditions]
    for run in runs:
        run.kind_counts = sorted(Counter(a[5] for a in by_run.get(run.pk, [])).items())
    for viewer in _SECTION_VIEWERS:
        comparison.sections[viewer] = [r for r in rows if r.viewer == viewer]
    comparison.roc = _roc_charts(rows, runs)
    comparison.metrics = _metric_rows(rows, runs, comparison.roc)
    comparison.tables = _tables(rows)
    comparison.confusion = _confusion(comparison.sections[Viewer.CONFUSION_MATRIX], runs)
    comparison.images = _image_series([r for r in rows if r.viewer == Viewer.IMAGE])
    comparison.sigs = _signatures(comparison)
    return comparison


def _rows_sig(rows: list[Row]) -> list:
    return [
        (
            r.key,
            [
                (c.artifact.pk, c.rendition.pk, c.rendition.status, c.rendition.updated_stamp)
                if c is not None and c.rendition is not None
                else (c.artifact.pk if c else None)
                for c in r.cells
            ],
        )
        for r in rows
    ]


def _signatures(c: Comparison) -> dict[str, str]:
    """A short hash per section of what it shows: the live refresh swaps only the sections whose
    hash changed, so the others keep their state (a table's page, a slider, an open frame)."""
    import hashlib

    def digest(value) -> str:
        return hashlib.blake2b(repr(value).encode(), digest_size=8).hexdigest()

    by_viewer: dict[str, list[Row]] = {}
    for row in c.rows:
        by_viewer.setdefault(row.viewer, []).append(row)
    runs = [(r.pk, r.status, r.artifact_count, r.last_event_at.isoformat(), r.kind_counts) for r in c.runs]
    viewer_sigs = {viewer: digest(_rows_sig(rows)) for viewer, rows in by_viewer.items()}
    sigs = dict(viewer_sigs)
    sigs["overview"] = digest(runs)
    sigs["metrics"] = digest((_rows_sig(by_viewer.get(Viewer.METRICS, [])), sigs.get(Viewer.ROC)))
    # Every row is in one viewer's signature: the matching one is made of those (and the
    # row keys' order), not of a second pass over the 2,000 cells.
    sigs["matching"] = digest(([r.key for r in c.rows], sorted(viewer_sigs.items()), sorted(c.pairs.items())))
    return sigs


def _viewer_of_kind(kind: str) -> str:
    return kind if kind in Viewer.ALL else Viewer.OTHER


def _ready(cell: Cell | None) -> bool:
    return cell is not None and cell.rendition is not None and cell.rendition.status == Rendition.Status.READY


def _roc_charts(rows: list[Row], runs: list[Run]) -> list[dict]:
    """One overlay per matched ROC row: every run's curve, cut to COMPARE_ROC_POINTS points each
    (shape-preserving LTTB; the AUC is the one computed on the whole curve at render time)."""
    cap = settings.COMPARE_ROC_POINTS
    charts = []
    for row in rows:
        if row.viewer != Viewer.ROC:
            continue
        curves, missing = [], []
        for run, cell in zip(runs, row.cells, strict=True):
            if not _ready(cell):
                missing.append({"run": run.pk, "reason": _absent_reason(cell)})
                continue
            p = cell.rendition.payload
            # The renderer stores the curve cut for overlays (roc.curve's "overlay", and the
            # query leaves the full lists out then); renditions made before it, or with a larger
            # COMPARE_ROC_POINTS than now, are cut here.
            source = p.get("overlay") or p
            points = list(
                zip(
                    source.get("fpr", []), source.get("tpr", []), source.get("thresholds") or [], strict=False
                )
            )
            shown = points if len(points) <= cap else lttb(points, cap)
            curves.append(
                {
                    "run": run.pk,
                    "label": f"{run.name} (#{run.pk})",
                    "auc": p.get("auc"),
                    "points": p.get("points"),
                    "fpr": [pt[0] for pt in shown],
                    "tpr": [pt[1] for pt in shown],
                    "thresholds": [pt[2] for pt in shown],
                }
            )
        charts.append({"id": f"roc-cmp-{len(charts)}", "key": row.key, "curves": curves, "missing": missing})
    return charts


def _confusion(rows: list[Row], runs: list[Run]) -> list[dict]:
    """Per matched confusion matrix: the side-by-side row, and each ready run's counts for the
    difference view (compare.js: B − A over the union of labels)."""
    out = []
    for i, row in enumerate(rows):
        data = [
            {
                "run": run.pk,
                "label": f"{run.name} (#{run.pk})",
                "labels": cell.rendition.payload.get("labels", []),
                "counts": cell.rendition.payload.get("counts", []),
            }
            for run, cell in zip(runs, row.cells, strict=True)
            if _ready(cell)
        ]
        out.append({"row": row, "id": f"cm-cmp-{i}", "data": data})
    return out


def _absent_reason(cell: Cell | None) -> str:
    if cell is None:
        return "—"
    if cell.rendition is None:
        return "waiting for the preview"
    if cell.rendition.status == Rendition.Status.FAILED:
        return f"no preview: {cell.rendition.error}"
    return "rendering…"


def _metric_rows(rows: list[Row], runs: list[Run], roc: list[dict]) -> list[MetricRow]:
    """KFP metrics (and each ROC curve's AUC) as one table: a row per (source, metric name)."""
    values: dict[tuple[str, str], list] = {}
    for row in rows:
        if row.viewer != Viewer.METRICS:
            continue
        for i, cell in enumerate(row.cells):
            if not _ready(cell):
                continue
            for m in cell.rendition.payload.get("metrics", []):
                slot = values.setdefault((row.key, m["name"]), [None] * len(runs))
                slot[i] = (m["value"], m["display"])
    for chart in roc:
        slot = values.setdefault((chart["key"], "AUC"), [None] * len(runs))
        index = {run.pk: i for i, run in enumerate(runs)}
        for curve in chart["curves"]:
            if curve["auc"] is not None:
                slot[index[curve["run"]]] = (float(curve["auc"]), f"{curve['auc']:.4g}")
    out = []
    for (source, name), slot in sorted(values.items(), key=lambda kv: (kv[0][1].lower(), kv[0][0])):
        nums = [v[0] if v else None for v in slot]
        lower = compare_match.lower_is_better(name)
        present = [v for v in nums if v is not None]
        out.append(
            MetricRow(
                name=name,
                source=source,
                values=nums,
                shown=[v[1] if v else "—" for v in slot],
                best=compare_match.best_index(nums, lower=lower),
                lower_is_better=lower,
                same=len(set(present)) <= 1 and len(present) == len(nums),
                bars=_bars(nums),
            )
        )
    return out


def _bars(values: list[float | None]) -> list[dict | None]:
    """Bar geometry on a 0..100 axis that includes zero (negative values grow left of it)."""
    present = [v for v in values if v is not None]
    if not present:
        return [None] * len(values)
    lo, hi = min(0.0, *present), max(0.0, *present)
    span = (hi - lo) or 1.0
    zero = (0 - lo) / span * 100
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        end = (v - lo) / span * 100
        out.append({"x": round(min(zero, end), 2), "width": round(max(abs(end - zero), 0.5), 2)})
    return out


def _tables(rows: list[Row]) -> list[dict]:
    """Matched table rows: merged into one (with a run column) when every ready table has the same
    column names, side by side otherwise."""
    out = []
    for row in rows:
        if row.viewer != Viewer.TABLE:
            continue
        ready = [c for c in row.cells if _ready(c)]
        columns = {tuple(col["name"] for col in c.rendition.payload.get("columns", [])) for c in ready}
        mergeable = (
            len(ready) >= 2
            and len(columns) == 1
            and all(c.rendition.payload.get("indexed") and c.rendition.payload.get("source") for c in ready)
        )
        entry: dict[str, Any] = {"row": row, "merged": mergeable}
        if mergeable:
            first = ready[0].rendition.payload
            entry.update(
                columns=first["columns"],
                parts=",".join(f"{c.run_id}:{c.artifact.pk}:{c.rendition.pk}" for c in ready),
                row_count=sum(c.rendition.payload.get("row_count") or 0 for c in ready),
                sortable=all(c.rendition.payload.get("sortable") for c in ready),
                page_rows=first.get("page_rows", 50),
                first_rows=[[c.run_id, *r] for c in ready for r in c.rendition.payload.get("rows", [])][
                    : first.get("page_rows", 50)
                ],
            )
        out.append(entry)
    return out


def _image_series(rows: list[Row]) -> list[dict]:
    """Image rows grouped into series (compare_match.group_series): a grid of runs × images with a
    slider over each series' numbered steps."""
    by_key = {row.key: row for row in rows}
    out = []
    for series, members in compare_match.group_series(by_key).items():
        out.append(
            {
                "name": series,
                "steps": [{"n": n, "key": key, "row": by_key[key]} for n, key in members],
                "slider": len(members) > 1,
            }
        )
    return out


def merged_table_parts(*, user, raw: str) -> list[tuple[int, Rendition]]:
    """The tables of a merged table, ``"<run>:<artifact>:<rendition>,…"`` (as the page wrote it),
    in that order, if ``user`` may see every one of their runs and they are current tables
    with the same column names. Raises ``RunsNotFound`` (404) for anything not visible or
    not there, ``CompareInputError`` (400) for a malformed list or different columns."""
    triples = []
    for part in raw.split(","):
        bits = part.strip().split(":")
        if len(bits) != 3 or not all(b.isdigit() and len(b) <= 18 for b in bits):
            raise CompareInputError(f"{part[:60]!r} is not <run>:<artifact>:<rendition>.")
        triples.append(tuple(int(b) for b in bits))
    if not 2 <= len(triples) <= compare_match.MAX_RUNS:
        raise CompareInputError(f"A merged table joins 2 to {compare_match.MAX_RUNS} tables.")
    run_ids = {t[0] for t in triples}
    visible = set(runs_visible_to(user=user).filter(pk__in=run_ids).values_list("pk", flat=True))
    found = {
        r.pk: r
        for r in Rendition.objects.filter(
            pk__in=[t[2] for t in triples],
            artifact__run_id__in=visible,
            artifact__deleted=False,
            etag=F("artifact__etag"),
        ).select_related("artifact")
    }
    out = []
    for run_id, artifact_id, rendition_id in triples:
        rendition = found.get(rendition_id)
        if rendition is None or rendition.artifact_id != artifact_id or rendition.artifact.run_id != run_id:
            raise RunsNotFound([run_id])
        out.append((run_id, rendition))
    if renditions_hide_foreign(user=user, renditions=[r for _, r in out]):
        raise RunsNotFound(list(run_ids))
    names = {tuple(c["name"] for c in r.payload.get("columns", [])) for _, r in out}
    if len(names) != 1 or any(r.viewer != Viewer.TABLE for _, r in out):
        raise CompareInputError("These tables do not have the same columns; they are shown side by side.")
    return out
