"""Pages of a merged table: the same-columns tables of several runs as one, with a leading run
column, paged and sorted on the server (docs/compare.md#tables).

Built only from ``readback.table_page`` (the one reader of table pages), so the merged
table reads what each run's own table reads: a ranged read per page, sorted pages from
the worker's sorted copies (asked for, and waited for, the same way: ``pending``).

- Unsorted: the tables one after the other, in the compare page's run order; a page
  that spans two tables reads the end of one and the start of the next.
- Sorted: a k-way merge of the runs' sorted copies, read from their first row in
  pages of up to 500 rows, so a page at offset ``start`` reads about ``start + count``
  rows in all; pages end at COMPARE_MERGED_SORT_MAX_ROWS (a run's own table pages deeper).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence

from django.conf import settings

from runs.models import Rendition
from runs.rendering.base import RenderError
from runs.rendering.readback import table_page
from runs.rendering.table import row_sort_key

_CHUNK = 500  # table_page's own largest page


class Pending(Exception):
    """A run's sorted copy is still being built (the page asks again)."""


def merged_page(
    *,
    parts: Sequence[tuple[int, Rendition]],
    start: int,
    count: int,
    sort: int | None = None,
    descending: bool = False,
) -> dict:
    """Rows [start, start+count) of the merged table, each ``[run id, *cells]``.

    ``sort`` is a column of the tables (0-based, without the run column)."""
    start, count = max(0, start), max(1, min(count, _CHUNK))
    row_count = sum(r.payload.get("row_count") or 0 for _, r in parts)
    if sort is None:
        rows = _concatenated(parts, start, count)
    else:
        limit = settings.COMPARE_MERGED_SORT_MAX_ROWS
        if start + count > limit:
            raise RenderError(
                f"Sorted pages of a merged table stop at row {limit:,}; "
                f"sort one run's own table to page further."
            )
        try:
            rows = _merged_sorted(parts, start, count, sort, descending)
        except Pending:
            return {
                "pending": True,
                "message": "Sorting the runs' tables (in the background)…",
                "row_count": row_count,
            }
    return {"start": start, "rows": rows, "row_count": row_count, "notices": []}


def _concatenated(parts: Sequence[tuple[int, Rendition]], start: int, count: int) -> list[list]:
    rows: list[list] = []
    offset = 0
    for run_id, rendition in parts:
        n = rendition.payload.get("row_count") or 0
        if start + len(rows) < offset + n:
            local = max(0, start + len(rows) - offset)
            page = table_page(rendition=rendition, start=local, count=count - len(rows))
            rows.extend([run_id, *r] for r in page["rows"])
            if len(rows) >= count:
                break
        offset += n
    return rows


def _sorted_rows(run_id: int, rendition: Rendition, sort: int, descending: bool) -> Iterator[list]:
    start = 0
    while True:
        page = table_page(rendition=rendition, start=start, count=_CHUNK, sort=sort, descending=descending)
        if page.get("pending"):
            raise Pending
        for row in page["rows"]:
            yield [run_id, *row]
        if len(page["rows"]) < _CHUNK:
            return
        start += _CHUNK


def _merged_sorted(
    parts: Sequence[tuple[int, Rendition]], start: int, count: int, sort: int, descending: bool
) -> list[list]:
    columns = parts[0][1].payload.get("columns", [])
    if not 0 <= sort < len(columns):
        raise RenderError("No such column.")
    key = row_sort_key(columns[sort]["type"])
    # Ask every table for its first sorted page before merging, so that all the sorted
    # copies still missing are requested at once (one wait, not one per run).
    streams = []
    pending = False
    for run_id, rendition in parts:
        stream = _sorted_rows(run_id, rendition, sort, descending)
        try:
            first = next(stream, None)
        except Pending:
            pending = True
            continue
        streams.append(_prepend(first, stream))
    if pending:
        raise Pending
    merged = heapq.merge(*streams, key=lambda row: key(row, sort + 1), reverse=descending)
    out = []
    for i, row in enumerate(merged):
        if i >= start + count:
            break
        if i >= start:
            out.append(row)
    return out


def _prepend(first, rest: Iterator[list]) -> Iterator[list]:
    if first is None:
        return
    yield first
    yield from rest
