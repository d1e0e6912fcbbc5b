"""The runs list: filters, keyset pages, filter choices, progress and metric columns (docs/portal.md).

Built for 200,000 runs and millions of artifacts (docs/performance.md):

- pages are keyset ("cursor") pages: the next page is "the rows after the last
  one shown" in the sort's order, a range start in that sort's index, so a
  page deep in the list costs what the first one does (no OFFSET);
- every sort ends with the run id, so rows that tie on the sort value keep one
  order and a cursor names one place;
- the count is capped (``COUNT_CAP``): "more than 10,000" instead of counting
  every visible run on each page;
- metric sorts read RunMetric (kept by runs/services/run_metrics.py) through
  its (name, value, run) index; runs without the metric come after, by id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core import signing
from django.db import connection
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from runs.models import Bucket, Run, RunMetric, RunProgress
from runs.selectors.access import AccessScope, access_scope_for, grant_q, runs_visible_to

# Each sort: the columns of its index (runs.models.Run.Meta.indexes), the id last,
# and one direction for all of them (a row comparison walks one index range).
RUN_SORTS: dict[str, tuple[tuple[str, ...], bool]] = {
    "recent": (("last_event_at", "id"), True),
    "oldest": (("last_event_at", "id"), False),
    "name": (("name", "id"), False),
    "artifacts": (("artifact_count", "last_event_at", "id"), True),
}

# Counting stops here: "more than 10,000 runs" costs one short index walk; an exact
# count of 200,000 visible runs on every page does not (docs/portal.md#pages).
COUNT_CAP = 10_000

# What a run's status can be (a step's "done" never is), for the list's filter.
RUN_STATUS_CHOICES = [(value, label) for value, label in Run.Status.choices if value != Run.Status.DONE]

_CURSOR_SALT = "runs.list.cursor"


@dataclass(frozen=True, slots=True)
class RunFilters:
    """Validated runs-list filters (runs/forms.py builds them from the query string)."""

    q: str = ""
    bucket: str = ""
    namespace: str = ""
    status: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    sort: str = "recent"
    # Sort by a metric's value instead (runs without it last); "" = use ``sort``.
    metric: str = ""
    metric_ascending: bool = False

    @property
    def active(self) -> bool:
        return bool(self.q or self.bucket or self.namespace or self.status or self.date_from or self.date_to)

    @property
    def order_key(self) -> str:
        """Names the order a cursor belongs to: a cursor of another order is refused."""
        if self.metric:
            return f"metric:{'asc' if self.metric_ascending else 'desc'}:{self.metric}"
        return self.sort


# --- cursors --------------------------------------------------------------------------


class BadCursor(ValueError):
    """A page link that was altered, truncated, or belongs to another sort order."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """A place in one sort order: the segment (metric sorts have two: runs with the metric,
    then runs without it) and the sort values of the row the page starts after or before."""

    order_key: str
    segment: int
    values: tuple


def cursor_encode(cursor: Cursor) -> str:
    """An opaque, signed token for URLs (``?after=`` / ``?before=``)."""
    values = [v.isoformat() if isinstance(v, dt.datetime) else v for v in cursor.values]
    return signing.dumps([cursor.order_key, cursor.segment, values], salt=_CURSOR_SALT, compress=True)


def cursor_decode(token: str, *, filters: RunFilters) -> Cursor:
    """The cursor in ``token`` for the order of ``filters``; BadCursor if it is not one."""
    try:
        order_key, segment, values = signing.loads(token, salt=_CURSOR_SALT)
    except (signing.BadSignature, ValueError, TypeError) as exc:
        raise BadCursor("This page link is damaged; start again from the first page.") from exc
    if order_key != filters.order_key:
        raise BadCursor("This page link belongs to another sort order; start again from the first page.")
    segments = _segment_keys(filters)
    if not isinstance(segment, int) or not 0 <= segment < len(segments):
        raise BadCursor("This page link is damaged; start again from the first page.")
    keys = segments[segment][0]
    if not isinstance(values, list) or len(values) != len(keys):
        raise BadCursor("This page link is damaged; start again from the first page.")
    try:
        parsed = tuple(_PARSE[key](value) for key, value in zip(keys, values, strict=True))
    except (TypeError, ValueError) as exc:
        raise BadCursor("This page link is damaged; start again from the first page.") from exc
    return Cursor(order_key=order_key, segment=segment, values=parsed)


def _parse_time(value) -> dt.datetime:
    when = dt.datetime.fromisoformat(value)
    if timezone.is_naive(when):
        raise ValueError("naive time")
    return when


def _parse_int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def _parse_str(value) -> str:
    if not isinstance(value, str):
        raise TypeError("not a string")
    return value


def _parse_float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


_PARSE = {
    "last_event_at": _parse_time,
    "id": _parse_int,
    "name": _parse_str,
    "artifact_count": _parse_int,
    "metric_value": _parse_float,
}


# --- filters and pages ----------------------------------------------------------------


def runs_filtered(*, user, filters: RunFilters, scope: AccessScope | None = None) -> QuerySet[Run]:
    """Visible runs matching ``filters``, unordered (``runs_page`` orders and pages them)."""
    runs = runs_visible_to(user=user, scope=scope)
    if filters.q:
        # icontains is UPPER(col) LIKE UPPER('%q%'): the trigram indexes on UPPER(col) serve it.
        runs = runs.filter(
            Q(name__icontains=filters.q) | Q(pipeline__icontains=filters.q) | Q(run_key__icontains=filters.q)
        )
    if filters.bucket:
        runs = runs.filter(bucket__name=filters.bucket)
    if filters.namespace:
        runs = runs.filter(namespace=filters.namespace)
    if filters.status:
        runs = runs.filter(status=filters.status)
    # Day bounds as times (not last_event_at::date), so the time index can serve them.
    if filters.date_from:
        runs = runs.filter(last_event_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        runs = runs.filter(last_event_at__lt=_day_start(filters.date_to + dt.timedelta(days=1)))
    return runs


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


@dataclass
class RunsPage:
    """One keyset page of the runs list."""

    runs: list[Run]
    has_next: bool
    has_previous: bool
    next_cursor: str = ""
    previous_cursor: str = ""
    # Matching runs, counted up to COUNT_CAP + 1 (past the cap: "more than", ``count_label``).
    count: int = 0
    # No page before this one: the first page, where live inserts may apply.
    first: bool = True

    @property
    def count_label(self) -> str:
        """ "3 runs", or "more than 10,000 runs" past the cap."""
        if self.count > COUNT_CAP:
            return f"more than {COUNT_CAP:,} runs"
        return f"{self.count:,} run{'' if self.count == 1 else 's'}"


def _segment_keys(filters: RunFilters) -> list[tuple[tuple[str, ...], bool]]:
    if filters.metric:
        descending = not filters.metric_ascending
        # Runs with the metric by value, then those without it, newest id first.
        return [(("metric_value", "id"), descending), (("id",), True)]
    return [RUN_SORTS[filters.sort]]


def _segments(runs: QuerySet[Run], filters: RunFilters) -> list[QuerySet[Run]]:
    if not filters.metric:
        return [runs]
    with_metric = runs.filter(metrics__name=filters.metric).annotate(metric_value=F("metrics__value"))
    without = runs.exclude(metrics__name=filters.metric)
    return [with_metric, without]


def _beyond(keys: tuple[str, ...], values: tuple, op: str) -> Q:
    """Rows past ``values`` in the order of ``keys`` (``op`` "lt" descending, "gt" ascending):
    (k1 op v1) OR (k1 = v1 AND (k2 op v2 OR ...)), plus k1 op= v1 so the index range starts there."""

    def rest(i: int) -> Q:
        term = Q(**{f"{keys[i]}__{op}": values[i]})
        if i == len(keys) - 1:
            return term
        return term | (Q(**{keys[i]: values[i]}) & rest(i + 1))

    return Q(**{f"{keys[0]}__{op}e": values[0]}) & rest(0)


def _ordered(qs: QuerySet[Run], keys: tuple[str, ...], descending: bool) -> QuerySet[Run]:
    return qs.order_by(*(f"-{k}" if descending else k for k in keys))


def _cursor_of(filters: RunFilters, segment: int, run: Run) -> str:
    keys = _segment_keys(filters)[segment][0]
    return cursor_encode(
        Cursor(order_key=filters.order_key, segment=segment, values=tuple(getattr(run, k) for k in keys))
    )


def runs_page(
    *,
    user,
    filters: RunFilters,
    size: int,
    after: Cursor | None = None,
    before: Cursor | None = None,
    scope: AccessScope | None = None,
) -> RunsPage:
    """The page of visible runs after ``after`` (or before ``before``; neither = the first page).

    One query per segment the page touches (one; two where a metric sort reaches the
    runs without the metric), plus the capped count.
    """
    runs = runs_filtered(user=user, filters=filters, scope=scope).select_related("bucket")
    segments = _segments(runs, filters)
    keys = _segment_keys(filters)
    rows: list[tuple[int, Run]] = []
    if before is not None:
        # Walk back from the cursor, segment by segment, in reversed order.
        for i in range(before.segment, -1, -1):
            seg_keys, descending = keys[i]
            qs = _ordered(segments[i], seg_keys, not descending)
            if i == before.segment:
                qs = qs.filter(_beyond(seg_keys, before.values, "gt" if descending else "lt"))
            rows += [(i, r) for r in qs[: size + 1 - len(rows)]]
            if len(rows) > size:
                break
        if len(rows) > size:
            rows = rows[:size][::-1]
            has_previous, has_next = True, True
        else:
            before = None  # back at the start: show the first page as it is now
            rows = []
    if before is None:
        start = after.segment if after is not None else 0
        for i in range(start, len(segments)):
            seg_keys, descending = keys[i]
            qs = _ordered(segments[i], seg_keys, descending)
            if after is not None and i == after.segment:
                qs = qs.filter(_beyond(seg_keys, after.values, "lt" if descending else "gt"))
            rows += [(i, r) for r in qs[: size + 1 - len(rows)]]
            if len(rows) > size:
                break
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = after is not None
    page = RunsPage(
        runs=[r for _, r in rows],
        has_next=has_next,
        has_previous=has_previous,
        first=not has_previous,
        count=runs.order_by().values("pk")[: COUNT_CAP + 1].count(),
    )
    if rows:
        page.next_cursor = _cursor_of(filters, *rows[-1]) if has_next else ""
        page.previous_cursor = _cursor_of(filters, *rows[0]) if has_previous else ""
    return page


# --- filter choices, progress and metric columns ----------------------------------------


def run_filter_choices(*, user, scope: AccessScope | None = None) -> dict[str, list[str]]:
    """Buckets and namespaces the user can filter by.

    Buckets: every bucket for a superuser, the granted ones for others (the small
    Bucket and grant tables, not the runs). Namespaces: the distinct namespaces of
    the visible runs, read by skipping through the (bucket, namespace) index
    (``_distinct_namespaces``), a few index probes per namespace however many runs.
    """
    scope = scope or access_scope_for(user=user)
    buckets = Bucket.objects.order_by("name")
    if not scope.everything:
        buckets = buckets.filter(pk__in={b for b, _, _ in scope.grants})
    return {
        "buckets": list(buckets.values_list("name", flat=True)),
        "namespaces": _distinct_namespaces(scope=scope),
    }


def _distinct_namespaces(*, scope) -> list[str]:
    """Distinct non-empty namespaces of the runs ``scope`` may see, sorted.

    Whole buckets (a superuser, a grant without prefix or namespace): a loose index
    scan (recursive CTE over run_bucket_ns_idx), a few index probes per namespace,
    since PostgreSQL 15 has no skip scan and DISTINCT over 200,000 runs reads them
    all. A grant limited to a namespace shows only that one; one limited to a key
    prefix reads the namespaces of its own runs.
    """
    found: set[str] = set()
    whole: list[int] = []
    prefixed = None
    for bucket_id, prefix, namespace in scope.grants:
        if namespace:
            found.add(namespace)
        elif prefix:
            term = grant_q(bucket_id=bucket_id, prefix=prefix, namespace="")
            prefixed = term if prefixed is None else prefixed | term
        else:
            whole.append(bucket_id)
    if prefixed is not None:
        found.update(
            Run.objects.filter(prefixed).exclude(namespace="").values_list("namespace", flat=True).distinct()
        )
    if scope.everything or whole:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                WITH RECURSIVE ns AS (
                    SELECT b.id AS bucket_id,
                           (SELECT min(namespace) FROM runs_run r
                             WHERE r.bucket_id = b.id AND r.namespace > '') AS namespace
                    FROM runs_bucket b WHERE %(all)s OR b.id = ANY(%(ids)s)
                    UNION ALL
                    SELECT ns.bucket_id,
                           (SELECT min(namespace) FROM runs_run r
                             WHERE r.bucket_id = ns.bucket_id AND r.namespace > ns.namespace)
                    FROM ns WHERE ns.namespace IS NOT NULL
                )
                SELECT DISTINCT namespace FROM ns WHERE namespace IS NOT NULL
                """,
                {"all": scope.everything, "ids": whole},
            )
            found.update(name for (name,) in cursor.fetchall())
    return sorted(found)


def run_progress_and_metrics(*, run_ids) -> dict[int, dict]:
    """Per run: the latest ready progress (``{"percent", "message"}`` or None) and its
    metrics (``{name: {"value", "display"}}``), from RunProgress and RunMetric (kept from
    the current renditions by runs/services/run_metrics.py): two index lookups per page."""
    ids = list(run_ids)
    out: dict[int, dict] = {}
    for run_id, percent, message in RunProgress.objects.filter(run_id__in=ids).values_list(
        "run_id", "percent", "message"
    ):
        out[run_id] = {"progress": {"percent": percent, "message": message}, "metrics": {}}
    for run_id, name, value, display in (
        RunMetric.objects.filter(run_id__in=ids)
        .order_by("name")
        .values_list("run_id", "name", "value", "display")
    ):
        entry = out.setdefault(run_id, {"progress": None, "metrics": {}})
        entry["metrics"][name] = {"value": value, "display": display}
    return out


# How many distinct metric names a user who does not see everything has checked
# (one index probe each, in one query).
_NAMES_CHECKED = 200


def metric_names(*, user, limit: int, scope: AccessScope | None = None) -> list[str]:
    """The first ``limit`` metric names (sorted) of the runs ``user`` may see.

    The distinct names come from skipping through RunMetric's (name, value, run)
    index (a handful of probes, not a scan of every run's metrics); for a user who
    does not see everything, each name is kept only if one visible run has it.
    """
    scope = scope or access_scope_for(user=user)
    if scope.run_filter() is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE names AS (
                SELECT min(name) AS name FROM runs_runmetric
                UNION ALL
                SELECT (SELECT min(name) FROM runs_runmetric WHERE name > names.name)
                FROM names WHERE names.name IS NOT NULL
            )
            SELECT name FROM names WHERE name IS NOT NULL
            """
        )
        names = [name for (name,) in cursor.fetchall()]
    if scope.everything or not names:
        return names[:limit]
    visible = runs_visible_to(user=user, scope=scope)
    checks = [
        RunMetric.objects.filter(name=name, run__in=visible).values("name")[:1]
        for name in names[:_NAMES_CHECKED]
    ]
    present = {row["name"] for row in checks[0].union(*checks[1:], all=True)}
    return [name for name in names if name in present][:limit]
