"""Parquet tables: schema, row count and pages, read row group by row group (docs/viewers.md).

Shown by the table viewer, with the same pages and worker-built sorted copies
as CSV tables, plus the Arrow schema. Nothing here reads a whole file: pyarrow
reads the footer and then one row group at a time through ranged reads of the
object (``RangedFile``), and only the columns shown.

A Parquet file is a footer that declares sizes, and a hostile one declares
what it likes. Before pyarrow sees anything, the magic bytes (``PAR1`` at both
ends), the footer length (≤ PARQUET_MAX_FOOTER_BYTES, inside the file) and
then each row group's declared size (≤ PARQUET_MAX_ROW_GROUP_BYTES) and count
(≤ PARQUET_MAX_ROW_GROUPS) are checked. The render then decodes every row
group once, in the worker (under its memory limit), and measures it: a row
group that decodes larger than declared, or to another row count, fails the
table. Page reads in the portal therefore only ever decode row groups the
worker has already decoded within the limit (same version: reads send
If-Match). Nested columns (lists, structs, maps) are listed in the schema and
not shown; a schema nested deeper than ``MAX_NESTING`` fails.

pyarrow is imported inside the functions: the consumer and the portal import
this module through the registry and need not carry it until a Parquet file
is read.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Iterator

from django.conf import settings

from runs.kinds import Viewer
from runs.rendering.base import Context, Output, RenderError, Source, human_bytes

VIEWER = Viewer.TABLE
FORMAT = "parquet"
MAGIC = b"PAR1"
MAX_NESTING = 16

# The system allocator gives memory back and turns the worker's RLIMIT_AS into a MemoryError
# (a failed rendition) rather than a reservation that fails at start-up.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def looks_like_parquet(head: bytes) -> bool:
    return head[:4] == MAGIC


class RangedFile(io.RawIOBase):
    """A read-only, seekable file over ``source.read(limit, offset=…)``: pyarrow reads the footer
    and then the column chunks it needs, each one ranged read."""

    def __init__(self, source: Source, size: int):
        self.source, self.size, self.pos = source, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, max(0, self.size - self.pos))
        data = self.source.read(n, offset=self.pos) if n else b""
        self.pos += len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _check_envelope(source: Source) -> int:
    """The file's size once its magic bytes and footer length make sense; RenderError otherwise."""
    size = source.size
    if size is None:
        raise RenderError("The Parquet file's size is unknown, so it cannot be read in parts.")
    if size < 12:
        raise RenderError("This is not a Parquet file: it is too small to hold one.")
    if source.read(4) != MAGIC:
        raise RenderError("This is not a Parquet file: it does not start with the magic bytes PAR1.")
    tail = source.read(8, offset=size - 8)
    if len(tail) != 8 or tail[4:] != MAGIC:
        raise RenderError(
            "This Parquet file is truncated or damaged: it does not end with the magic bytes PAR1."
        )
    footer = struct.unpack("<I", tail[:4])[0]
    if footer + 12 > size:
        raise RenderError(
            f"This Parquet file is truncated or damaged: its footer claims {human_bytes(footer)}, "
            f"more than the file holds."
        )
    cap = settings.PARQUET_MAX_FOOTER_BYTES
    if footer > cap:
        raise RenderError(
            f"This Parquet file's footer is {human_bytes(footer)}, more than the {human_bytes(cap)} "
            f"limit (PARQUET_MAX_FOOTER_BYTES)."
        )
    return size


def _depth(arrow_type) -> int:
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        return 1 + max((_depth(arrow_type.field(i).type) for i in range(arrow_type.num_fields)), default=0)
    if pa.types.is_map(arrow_type):
        return 1 + max(_depth(arrow_type.key_type), _depth(arrow_type.item_type))
    if (
        pa.types.is_list(arrow_type)
        or pa.types.is_large_list(arrow_type)
        or pa.types.is_fixed_size_list(arrow_type)
    ):
        return 1 + _depth(arrow_type.value_type)
    if pa.types.is_union(arrow_type):
        return 1 + max((_depth(arrow_type.field(i).type) for i in range(arrow_type.num_fields)), default=0)
    return 0


def _kind_of(arrow_type) -> str:
    """The CSV viewer's column class (it decides how sorting compares)."""
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_integer(arrow_type):
        return "integer"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "number"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    return "string"


def _open(source: Source):
    """(ParquetFile, its metadata) after the envelope and the declared sizes are checked."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    size = _check_envelope(source)
    try:
        parquet = pq.ParquetFile(RangedFile(source, size), pre_buffer=False)
        meta = parquet.metadata
        schema = parquet.schema_arrow
    except MemoryError:
        raise
    except RenderError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
        raise RenderError(f"This Parquet file cannot be read: {str(exc)[:200]}") from exc
    groups = meta.num_row_groups
    if groups > settings.PARQUET_MAX_ROW_GROUPS:
        raise RenderError(
            f"This Parquet file has {groups} row groups, more than the {settings.PARQUET_MAX_ROW_GROUPS} "
            f"limit (PARQUET_MAX_ROW_GROUPS)."
        )
    cap = settings.PARQUET_MAX_ROW_GROUP_BYTES
    for i in range(groups):
        group = meta.row_group(i)
        if group.num_rows < 0 or group.total_byte_size < 0:
            raise RenderError(f"This Parquet file is damaged: row group {i + 1} declares a negative size.")
        if group.total_byte_size > cap:
            raise RenderError(
                f"Row group {i + 1} of this Parquet file holds {human_bytes(group.total_byte_size)} of data, "
                f"more than the {human_bytes(cap)} a row group may hold here (PARQUET_MAX_ROW_GROUP_BYTES)."
            )
    return parquet, meta, schema


def _columns(schema) -> tuple[list[dict], list[int], list[dict], list[str]]:
    """(shown columns, their field indexes, the whole schema, notices)."""
    import pyarrow as pa

    fields = [schema.field(i) for i in range(len(schema))]
    whole = [{"name": f.name, "type": str(f.type)[:200]} for f in fields[:1000]]
    notices, shown, indexes, seen = [], [], [], set()
    nested = []
    for i, f in enumerate(fields):
        if _depth(f.type) > MAX_NESTING:
            raise RenderError(
                f"Column {f.name[:100]!r} of this Parquet file is nested more than {MAX_NESTING} levels deep."
            )
        if pa.types.is_nested(f.type) or (
            pa.types.is_dictionary(f.type) and pa.types.is_nested(f.type.value_type)
        ):
            nested.append(f.name)
            continue
        if f.name in seen:
            continue  # columns are read by name: a second one of the same name cannot be
        seen.add(f.name)
        shown.append({"name": f.name, "type": _kind_of(f.type), "arrow_type": str(f.type)[:200]})
        indexes.append(i)
    if not shown:
        raise RenderError("This Parquet file has no column the table viewer can show (all are nested).")
    if nested:
        notices.append(
            f"{len(nested)} nested column{'s' if len(nested) > 1 else ''} (lists, structs or maps) "
            f"{'are' if len(nested) > 1 else 'is'} listed in the schema but not shown: "
            + ", ".join(n[:60] for n in nested[:10])
            + ("…" if len(nested) > 10 else "")
        )
    cap = settings.TABLE_MAX_COLUMNS
    if len(shown) > cap:
        notices.append(f"Only the first {cap} of {len(shown)} columns are shown.")
        shown, indexes = shown[:cap], indexes[:cap]
    if len(fields) > len(whole):
        notices.append(f"The schema lists the first {len(whole)} of {len(fields)} columns.")
    return shown, indexes, whole, notices


def _cells(table, start: int, count: int) -> list[list[str]]:
    """Rows [start, start+count) of an Arrow table as text cells, cut as on every table page."""
    import pyarrow as pa
    import pyarrow.compute as pc

    part = table.slice(start, count)
    cap = settings.TABLE_MAX_CELL_CHARS
    columns = []
    for column in part.columns:
        try:
            values = pc.cast(column, pa.string()).to_pylist()
        except (pa.ArrowException, ValueError):
            values = [_text(v) for v in column.to_pylist()]
        columns.append(["" if v is None else (v if len(v) <= cap else v[:cap] + "…") for v in values])
    return [list(row) for row in zip(*columns, strict=True)] if columns else []


def _text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _read_group(parquet, meta, index: int, names: list[str]):
    """One row group's shown columns, checked against what the footer declared."""
    import pyarrow as pa

    try:
        table = parquet.read_row_group(index, columns=names, use_threads=False)
    except MemoryError:
        raise
    except (pa.ArrowException, OSError, ValueError, TypeError, IndexError) as exc:
        raise RenderError(
            f"Row group {index + 1} of this Parquet file cannot be read: {str(exc)[:200]}"
        ) from exc
    declared = meta.row_group(index)
    if table.num_rows != declared.num_rows:
        raise RenderError(
            f"This Parquet file is damaged: row group {index + 1} holds {table.num_rows} rows, "
            f"its footer says {declared.num_rows}."
        )
    cap = settings.PARQUET_MAX_ROW_GROUP_BYTES
    if table.nbytes > cap:
        raise RenderError(
            f"Row group {index + 1} of this Parquet file decodes to {human_bytes(table.nbytes)}, more than "
            f"the {human_bytes(cap)} a row group may hold here (PARQUET_MAX_ROW_GROUP_BYTES)."
        )
    return table


def render(source: Source, ctx: Context, *, title: str = "") -> list[Output]:
    parquet, meta, schema = _open(source)
    shown, _indexes, whole, notices = _columns(schema)
    names = [c["name"] for c in shown]
    page_rows = settings.TABLE_PAGE_ROWS
    location = source.location() or (ctx.store_source(source) if ctx.store_source else {})
    payload = {
        "format": FORMAT,
        "columns": shown,
        "schema": whole,
        "rows": [],
        "page_rows": page_rows,
        "row_count": meta.num_rows,
        "row_groups": meta.num_row_groups,
        "source": location,
        "size": source.size,
        "notices": notices,
        "sortable": False,
        "indexed": False,
    }
    title = title or source.name
    decoded = 0
    for index in range(meta.num_row_groups):
        table = _read_group(parquet, meta, index, names)
        decoded += table.nbytes
        if len(payload["rows"]) < page_rows:
            payload["rows"] += _cells(table, 0, page_rows - len(payload["rows"]))
            if len(payload["rows"]) >= page_rows and index + 1 < meta.num_row_groups and ctx.publish:
                ctx.publish([Output(viewer=VIEWER, title=title, payload=dict(payload))])
        del table
    payload.update(
        indexed=True,
        decoded_bytes=decoded,
        sortable=bool(
            location
            and (source.size or 0) <= settings.TABLE_SORT_MAX_BYTES
            and decoded <= settings.TABLE_SORT_MAX_BYTES
        ),
    )
    return [Output(viewer=VIEWER, title=title, payload=payload)]


def _group_starts(meta) -> list[int]:
    starts, total = [], 0
    for i in range(meta.num_row_groups):
        starts.append(total)
        total += meta.row_group(i).num_rows
    return starts


def read_page(payload: dict, source: Source, *, start: int, count: int) -> dict:
    """Rows [start, start+count) in file order: the footer, then only the row groups that hold
    them (each decoded by the render within PARQUET_MAX_ROW_GROUP_BYTES)."""
    parquet, meta, _schema = _open(source)
    names = [c["name"] for c in payload["columns"]]
    start = max(0, start)
    count = max(1, min(count, 500))
    starts = _group_starts(meta)
    rows: list[list[str]] = []
    for index, first in enumerate(starts):
        last = first + meta.row_group(index).num_rows
        if last <= start or meta.row_group(index).num_rows == 0:
            continue
        if first >= start + count:
            break
        table = _read_group(parquet, meta, index, names)
        offset = max(0, start + len(rows) - first)
        rows += _cells(table, offset, count - len(rows))
        if len(rows) >= count:
            break
    return {"start": start, "rows": rows, "row_count": payload.get("row_count"), "notices": []}


def iter_rows(payload: dict, source: Source) -> Iterator[list[str]]:
    """Every row in file order, one row group decoded at a time (the worker's sorted copies)."""
    parquet, meta, _schema = _open(source)
    names = [c["name"] for c in payload["columns"]]
    for index in range(meta.num_row_groups):
        table = _read_group(parquet, meta, index, names)
        yield from _cells(table, 0, table.num_rows)
