"""Tables (CSV/TSV): column types, row count and server-side paging with bounded memory.

Rendering reads a sample for columns, types and the first page (published at
once, so a 1 GB file shows its first page in a second), then streams the
whole file once to count records and write a sparse *row-offset index*:
``[record number, byte offset]`` every TABLE_INDEX_CHUNK_BYTES, quote-aware
(a newline inside a quoted field does not end a record). A page is then one
ranged read between two index entries. See docs/viewers.md.

Sorting happens in the worker, never in the portal process: ``build_sorted``
writes the rows in ascending order of one column as JSON lines, with a
sparse offset list (every SORTED_OFFSET_EVERY rows); ``read_sorted_page``
then answers any page, ascending or descending, with one small ranged read.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source, decode_text, human_bytes, looks_binary

VIEWER = Viewer.TABLE
csv.field_size_limit(1024 * 1024)


def delimiter_for(name: str, sample: str) -> str:
    if name.lower().endswith(".tsv"):
        return "\t"
    first = sample[:8192]
    try:
        return csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _type_of(value: str) -> str:
    if value == "":
        return "empty"
    if re.fullmatch(r"[+-]?\d+", value):
        return "integer"
    try:
        float(value)
        return "number"
    except ValueError:
        pass
    if value.lower() in ("true", "false"):
        return "boolean"
    return "string"


def column_types(rows: list[list[str]], ncols: int) -> list[str]:
    order = ["empty", "boolean", "integer", "number", "string"]
    types = ["empty"] * ncols
    for row in rows:
        for i, value in enumerate(row[:ncols]):
            t = _type_of(value.strip())
            cur = types[i]
            if t == cur or t == "empty":
                continue
            if cur == "empty":
                types[i] = t
            elif {cur, t} == {"integer", "number"}:
                types[i] = "number"
            else:
                types[i] = "string" if order.index(t) != order.index(cur) else cur
    return types


def _fit(row: list[str], ncols: int, cell_cap: int) -> list[str]:
    row = [c if len(c) <= cell_cap else c[:cell_cap] + "…" for c in row[:ncols]]
    return row + [""] * (ncols - len(row))


def _line_too_long(cap: int) -> RenderError:
    return RenderError(
        f"A line of the file is longer than {human_bytes(cap)} (TABLE_MAX_LINE_BYTES); "
        f"it is not read as a table."
    )


def iter_lines(chunks: Iterable[bytes], *, max_line: int | None = None) -> Iterator[str]:
    """Decoded lines (newline kept) from byte chunks; bad UTF-8 becomes U+FFFD.

    A partial line is kept as a list of pieces (joined once, when its newline
    arrives), so a long line costs linear time; one longer than ``max_line``
    (TABLE_MAX_LINE_BYTES) is a RenderError.
    """
    cap = settings.TABLE_MAX_LINE_BYTES if max_line is None else max_line
    parts: list[bytes] = []
    pending = 0
    for chunk in chunks:
        lines = chunk.split(b"\n")
        if len(lines) == 1:
            parts.append(chunk)
            pending += len(chunk)
            if pending > cap:
                raise _line_too_long(cap)
            continue
        if parts:
            lines[0] = b"".join(parts) + lines[0]
        rest = lines.pop()
        if max(map(len, lines)) > cap:
            raise _line_too_long(cap)
        for line in lines:
            yield line.decode("utf-8", errors="replace") + "\n"
        parts, pending = ([rest], len(rest)) if rest else ([], 0)
        if pending > cap:
            raise _line_too_long(cap)
    if parts:
        yield b"".join(parts).decode("utf-8", errors="replace")


def build_index(
    chunks: Iterable[bytes], every_bytes: int, *, max_line: int | None = None
) -> tuple[int, list[list[int]]]:
    """(record count, sparse [record number, byte offset] index) of a CSV stream.

    Chunks without a quote character are counted with ``bytes.count`` (C
    speed); chunks with quotes track quote parity line by line, so quoted
    newlines do not split records. Memory: one chunk plus one partial line,
    at most TABLE_MAX_LINE_BYTES (longer: RenderError).
    """
    cap = settings.TABLE_MAX_LINE_BYTES if max_line is None else max_line
    index = [[0, 0]]
    records = 0
    offset = 0
    in_quote = False
    parts: list[bytes] = []  # the partial line carried over
    pending = 0
    next_mark = every_bytes
    for chunk in chunks:
        cut = chunk.rfind(b"\n")
        if cut < 0:
            parts.append(chunk)
            pending += len(chunk)
            if pending > cap:
                raise _line_too_long(cap)
            continue
        if parts:
            if pending + chunk.find(b"\n") + 1 > cap:
                raise _line_too_long(cap)
            piece = b"".join(parts) + chunk[: cut + 1]
        else:
            piece = chunk[: cut + 1]
        rest = chunk[cut + 1 :]
        parts, pending = ([rest], len(rest)) if rest else ([], 0)
        if not in_quote and b'"' not in piece:
            records += piece.count(b"\n")
        else:
            for line in piece.split(b"\n")[:-1]:
                if line.count(b'"') & 1:
                    in_quote = not in_quote
                if not in_quote:
                    records += 1
        offset += len(piece)
        if offset >= next_mark and not in_quote:
            index.append([records, offset])
            next_mark = offset + every_bytes
    if b"".join(parts).strip():
        records += 1
    return records, index


def parse_sample(
    text: str, *, delimiter: str, header: list[str] | None
) -> tuple[list[str], list[list[str]], int, bool]:
    """(column names, sample rows, ragged count, whether the file has a header row)."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    rows = [r for r in rows if r]
    header_row = False
    if header is not None:
        names = list(header)
    elif not rows:
        raise RenderError("The file is empty: no header row.")
    elif all(_type_of(c.strip()) in ("integer", "number") for c in rows[0]):
        # A first row of numbers is data (KFP writes roc/table CSVs without a header).
        names = [f"column {i + 1}" for i in range(len(rows[0]))]
    else:
        names, rows, header_row = rows[0], rows[1:], True
    ragged = sum(1 for r in rows if len(r) != len(names))
    return names, rows, ragged, header_row


def render(source: Source, ctx: Context, *, header: list[str] | None = None, title: str = "") -> list[Output]:
    page_rows = settings.TABLE_PAGE_ROWS
    sample_cap = settings.TABLE_SAMPLE_BYTES
    sample = source.read(sample_cap + 1)
    complete = len(sample) <= sample_cap
    sample = sample[:sample_cap]
    if looks_binary(sample):
        raise RenderError("This is binary data, not a CSV/TSV text table.")
    if not complete:
        sample = sample[: sample.rfind(b"\n") + 1] or sample  # whole lines only
    text, replaced = decode_text(sample)
    delimiter = delimiter_for(source.name, text)
    try:
        names, rows, ragged, header_row = parse_sample(text, delimiter=delimiter, header=header)
    except csv.Error as exc:
        raise RenderError(f"Not a readable CSV: {exc}") from exc
    notices = []
    max_cols = settings.TABLE_MAX_COLUMNS
    if len(names) > max_cols:
        notices.append(f"Only the first {max_cols} of {len(names)} columns are shown.")
        names = names[:max_cols]
    if replaced:
        notices.append("Bytes that are not valid UTF-8 were replaced with �.")
    if ragged:
        notices.append(
            f"{ragged} of the first {len(rows)} rows have a different number of fields "
            f"than the header ({len(names)}); they are padded or cut to fit."
        )
    cell_cap = settings.TABLE_MAX_CELL_CHARS
    types = column_types(rows, len(names))
    location = source.location() or (ctx.store_source(source) if ctx.store_source else {})
    payload = {
        "columns": [{"name": n, "type": t} for n, t in zip(names, types, strict=False)],
        "rows": [_fit(r, len(names), cell_cap) for r in rows[:page_rows]],
        "page_rows": page_rows,
        "delimiter": delimiter,
        "header": header,
        "has_header_row": header_row,
        "source": location,
        "size": source.size,
        "notices": notices,
        "sortable": bool(source.size is not None and source.size <= settings.TABLE_SORT_MAX_BYTES),
    }
    title = title or source.name
    if complete:
        payload.update(row_count=len(rows), indexed=True, index=[[0, 0]])
        return [Output(viewer=VIEWER, title=title, payload=payload)]
    # Large file: show the first page now, then count and index the rest.
    if ctx.publish:
        ctx.publish(
            [Output(viewer=VIEWER, title=title, payload={**payload, "row_count": None, "indexed": False})]
        )
    records, index = build_index(
        source.chunks(min(1024 * 1024, settings.TABLE_INDEX_CHUNK_BYTES)), settings.TABLE_INDEX_CHUNK_BYTES
    )
    key = ctx.store("index.json", json.dumps(index, separators=(",", ":")).encode(), "application/json")
    payload.update(row_count=records - (1 if header_row else 0), indexed=True, index_key=key)
    return [Output(viewer=VIEWER, title=title, payload=payload, preview_key=key)]


def _sort_key(kind: str) -> Callable[[list[str], int], tuple]:
    """Numbers first, in numeric order, then everything else (text, NaN, infinities) as text:
    a key never holds NaN, which compares false with everything and would make the order arbitrary."""

    def key(row, col):
        value = row[col] if col < len(row) else ""
        if kind in ("integer", "number"):
            try:
                number = float(value)
            except ValueError:
                return (1, value.lower())
            return (0, number) if math.isfinite(number) else (1, value.strip().lower())
        return (0, value.lower())

    return key


# The same order for pages merged across tables (runs/rendering/merged_table.py).
row_sort_key = _sort_key

SORTED_OFFSET_EVERY = 100


def build_sorted(payload: dict, chunks: Iterable[bytes], *, column: int) -> tuple[bytes, dict]:
    """(the table's rows sorted ascending by ``column``, as JSON lines; its meta).

    Meta: ``{"column", "rows", "every", "offsets"}`` where ``offsets[k]`` is the
    byte offset of row ``k * every`` and the last entry is the end. Cells are
    cut and rows padded as on every page, so the copy is at most about the
    size of the file. Runs in the worker (runs/services/table_sort.py).
    """
    if not 0 <= column < len(payload["columns"]):
        raise RenderError("No such column.")
    header_records = 1 if payload.get("has_header_row", True) else 0
    try:
        rows = [r for r in csv.reader(iter_lines(chunks), delimiter=payload.get("delimiter", ",")) if r][
            header_records:
        ]
    except csv.Error as exc:
        raise RenderError(f"This table is not readable CSV: {exc}") from exc
    return sorted_copy(payload, rows, column=column)


def sorted_copy(payload: dict, rows: list[list[str]], *, column: int) -> tuple[bytes, dict]:
    """``build_sorted`` for rows already read (CSV, or Parquet row groups: runs/rendering/parquet.py)."""
    columns = payload["columns"]
    if not 0 <= column < len(columns):
        raise RenderError("No such column.")
    ncols = len(columns)
    cell_cap = settings.TABLE_MAX_CELL_CHARS
    key = _sort_key(columns[column]["type"])
    rows.sort(key=lambda r: key(r, column))
    out = io.BytesIO()
    offsets = []
    for i, row in enumerate(rows):
        if i % SORTED_OFFSET_EVERY == 0:
            offsets.append(out.tell())
        out.write(json.dumps(_fit(row, ncols, cell_cap), ensure_ascii=False, separators=(",", ":")).encode())
        out.write(b"\n")
    offsets.append(out.tell())
    return out.getvalue(), {
        "column": column,
        "rows": len(rows),
        "every": SORTED_OFFSET_EVERY,
        "offsets": offsets,
    }


def read_sorted_page(
    meta: dict,
    read: Callable[[int, int | None], Iterable[bytes]],
    *,
    start: int,
    count: int,
    descending: bool = False,
) -> list[list[str]]:
    """Rows [start, start+count) in ascending or descending order, from a ``build_sorted`` copy:
    one ranged read of at most ``count`` + 2 × ``every`` rows. Descending reads the ascending
    copy backwards (rows with equal values come in reverse file order)."""
    n, every, offsets = meta["rows"], meta["every"], meta["offsets"]
    start = max(0, start)
    count = max(1, min(count, 500))
    if descending:
        lo, hi = max(0, n - start - count), max(0, n - start)
    else:
        lo, hi = min(start, n), min(start + count, n)
    if lo >= hi:
        return []
    first, last = lo // every, (hi - 1) // every
    begin, end = offsets[first], offsets[last + 1]
    lines = b"".join(read(begin, end - begin)).split(b"\n")
    rows = [json.loads(line) for line in lines[lo - first * every : hi - first * every]]
    return rows[::-1] if descending else rows


def read_page(
    payload: dict,
    index: list[list[int]],
    read: Callable[[int, int | None], Iterable[bytes]],
    *,
    start: int,
    count: int,
    sort: int | None = None,
    descending: bool = False,
) -> dict:
    """Rows [start, start+count) of the table; ``read(offset, length)`` streams the file.

    Unsorted: one ranged read between two index entries. Sorted (only for
    files up to TABLE_SORT_MAX_BYTES): the whole file is read and sorted.
    """
    names = [c["name"] for c in payload["columns"]]
    ncols = len(names)
    header_records = 1 if payload.get("has_header_row", True) else 0
    cell_cap = settings.TABLE_MAX_CELL_CHARS
    delimiter = payload.get("delimiter", ",")
    start = max(0, start)
    count = max(1, min(count, 500))
    try:
        chosen = _select(
            payload,
            index,
            read,
            start=start,
            count=count,
            sort=sort,
            descending=descending,
            ncols=ncols,
            header_records=header_records,
            delimiter=delimiter,
        )
    except csv.Error as exc:
        raise RenderError(f"This part of the file is not readable CSV: {exc}") from exc
    ragged = sum(1 for r in chosen if len(r) != ncols)
    notices = (
        [f"{ragged} rows on this page have a different number of fields than the header."] if ragged else []
    )
    return {
        "start": start,
        "rows": [_fit(r, ncols, cell_cap) for r in chosen],
        "row_count": payload.get("row_count"),
        "notices": notices,
    }


def _select(payload, index, read, *, start, count, sort, descending, ncols, header_records, delimiter):
    if sort is not None:
        if not payload.get("sortable"):
            raise RenderError("This table is too large to sort.")
        if not 0 <= sort < ncols:
            raise RenderError("No such column.")
        rows = list(csv.reader(iter_lines(read(0, None)), delimiter=delimiter))
        rows = [r for r in rows if r][header_records:]
        key = _sort_key(payload["columns"][sort]["type"])
        rows.sort(key=lambda r: key(r, sort), reverse=descending)
        chosen = rows[start : start + count]
    else:
        record = start + header_records
        records = [e[0] for e in index]
        lo = bisect.bisect_right(records, record) - 1
        hi = bisect.bisect_right(records, record + count)
        begin_record, begin = index[lo]
        length = index[hi][1] - begin if hi < len(index) else None
        reader = csv.reader(iter_lines(read(begin, length)), delimiter=delimiter)
        chosen = []
        skip = record - begin_record
        for row in reader:
            if skip:  # blank lines are records too (build_index counts them)
                skip -= 1
                continue
            if not row:
                continue
            chosen.append(row)
            if len(chosen) >= count:
                break
    return chosen
