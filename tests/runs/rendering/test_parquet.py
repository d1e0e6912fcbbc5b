"""Parquet tables (runs/rendering/parquet.py): schema, pages by row group, sorted copies, and
hostile files (truncated, wrong magic, lying footers, nested types) that must fail with a reason."""

from __future__ import annotations

import io
import json
import random
import struct

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runs import kinds
from runs.rendering import parquet, table
from runs.rendering.base import BytesSource, Context, RenderError
from runs.rendering.registry import render_artifact


def parquet_bytes(tbl: pa.Table, *, row_group_size: int | None = None, compression: str = "snappy") -> bytes:
    buf = io.BytesIO()
    pq.write_table(tbl, buf, row_group_size=row_group_size, compression=compression)
    return buf.getvalue()


def sample(rows: int = 120) -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(rows), pa.int64()),
            "flower": pa.array([["tulip", "rose", "daisy", None][i % 4] for i in range(rows)]),
            "score": pa.array([round((i * 37 % 100) / 100, 2) for i in range(rows)], pa.float64()),
            "correct": pa.array([i % 3 == 0 for i in range(rows)]),
        }
    )


def ctx(published=None) -> Context:
    return Context(
        store=lambda *a: "k",
        store_source=lambda s: {"bucket": "b", "key": "k", "etag": "e"},
        publish=(published.append if published is not None else None),
    )


def render(data: bytes, name: str = "train.parquet"):
    return parquet.render(BytesSource(name, data), ctx())


def test_a_parquet_file_is_a_table_with_its_schema_and_first_page(settings):
    settings.TABLE_PAGE_ROWS = 50
    (out,) = render(parquet_bytes(sample(), row_group_size=40))
    p = out.payload
    assert out.viewer == "table" and not out.failed
    assert p["format"] == "parquet" and p["row_count"] == 120 and p["row_groups"] == 3 and p["indexed"]
    assert [(c["name"], c["type"], c["arrow_type"]) for c in p["columns"]] == [
        ("id", "integer", "int64"),
        ("flower", "string", "string"),
        ("score", "number", "double"),
        ("correct", "boolean", "bool"),
    ]
    assert p["schema"] == [{"name": c["name"], "type": c["arrow_type"]} for c in p["columns"]]
    assert len(p["rows"]) == 50 and p["rows"][0] == ["0", "tulip", "0", "true"]
    assert p["rows"][3][1] == ""  # null
    assert p["rows"][45][0] == "45"  # the first page spans two row groups
    assert p["sortable"]
    json.dumps(p, allow_nan=False)


def test_pages_are_read_from_the_row_groups_that_hold_them():
    data = parquet_bytes(sample(), row_group_size=40)
    (out,) = render(data)
    source = BytesSource("t.parquet", data)
    page = parquet.read_page(out.payload, source, start=35, count=10)
    assert [r[0] for r in page["rows"]] == [str(i) for i in range(35, 45)]
    page = parquet.read_page(out.payload, source, start=110, count=50)
    assert [r[0] for r in page["rows"]] == [str(i) for i in range(110, 120)]
    assert parquet.read_page(out.payload, source, start=500, count=10)["rows"] == []


def test_sorted_copies_of_a_parquet_table_sort_numbers_numerically():
    data = parquet_bytes(sample(30), row_group_size=7)
    (out,) = render(data)
    rows = list(parquet.iter_rows(out.payload, BytesSource("t.parquet", data)))
    body, meta = table.sorted_copy(out.payload, rows, column=2)
    page = table.read_sorted_page(
        meta, lambda offset, length: [body[offset : offset + length]], start=0, count=30
    )
    scores = [float(r[2]) for r in page]
    assert scores == sorted(scores) and meta["rows"] == 30


def test_large_first_page_is_published_before_every_row_group_is_checked(settings):
    settings.TABLE_PAGE_ROWS = 10
    published = []
    (out,) = parquet.render(
        BytesSource("t.parquet", parquet_bytes(sample(), row_group_size=20)), ctx(published)
    )
    assert len(published) == 1 and not published[0][0].payload["indexed"]
    assert published[0][0].payload["rows"] == out.payload["rows"]


def test_nested_columns_are_listed_in_the_schema_and_not_shown():
    tbl = pa.table({"id": [1, 2], "tags": [["a"], ["b", "c"]], "point": [{"x": 1}, {"x": 2}]})
    (out,) = render(parquet_bytes(tbl))
    assert [c["name"] for c in out.payload["columns"]] == ["id"]
    assert [f["name"] for f in out.payload["schema"]] == ["id", "tags", "point"]
    assert "2 nested columns" in out.payload["notices"][0] and "tags" in out.payload["notices"][0]


def test_a_file_of_only_nested_columns_fails_with_a_reason():
    with pytest.raises(RenderError, match="no column the table viewer can show"):
        render(parquet_bytes(pa.table({"tags": [["a"], ["b"]]})))


def test_a_schema_nested_too_deeply_fails():
    value, arrow_type = 1, pa.int64()
    for _ in range(parquet.MAX_NESTING + 2):
        value, arrow_type = [value], pa.list_(arrow_type)
    tbl = pa.table({"id": [1], "deep": pa.array([value], arrow_type)})
    with pytest.raises(RenderError, match="nested more than"):
        render(parquet_bytes(tbl))


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: b"", "too small"),
        (lambda d: b"PAR1PAR1", "too small"),
        (lambda d: b"XXXX" + d[4:], "does not start with the magic bytes"),
        (lambda d: d[: len(d) // 2], "truncated or damaged"),
        (lambda d: d[:-1], "truncated or damaged"),
        (lambda d: d[:-8] + struct.pack("<I", 2**31) + b"PAR1", "footer claims"),
        (lambda d: d[:4] + b"\xff" * (len(d) - 12) + d[-8:], "cannot be read"),
        (
            lambda d: b"PAR1" + b"\x00" * (10 * 1024 * 1024) + struct.pack("<I", 9 * 1024 * 1024) + b"PAR1",
            "limit",
        ),
    ],
)
def test_hostile_parquet_files_fail_with_a_clear_reason(mutate, reason):
    with pytest.raises(RenderError, match=reason):
        render(mutate(parquet_bytes(sample(50), row_group_size=10)))


def test_a_row_group_declaring_more_than_the_limit_is_refused_before_it_is_read(settings):
    settings.PARQUET_MAX_ROW_GROUP_BYTES = 1024
    with pytest.raises(RenderError, match="PARQUET_MAX_ROW_GROUP_BYTES"):
        render(parquet_bytes(sample(5000)))


def test_too_many_row_groups_are_refused(settings):
    settings.PARQUET_MAX_ROW_GROUPS = 3
    with pytest.raises(RenderError, match="PARQUET_MAX_ROW_GROUPS"):
        render(parquet_bytes(sample(40), row_group_size=10))


def test_mutated_parquet_files_end_as_a_table_or_a_reason_never_an_exception():
    """Seeded byte flips and cuts anywhere in real files (footer, page headers, data)."""
    rng = random.Random(20261129)
    originals = [
        parquet_bytes(sample(200), row_group_size=50),
        parquet_bytes(sample(60), compression="gzip"),
        parquet_bytes(pa.table({"s": ["x" * 50] * 30, "n": list(range(30))}), compression="none"),
    ]
    outcomes = {"ok": 0, "failed": 0}
    for _ in range(300):
        data = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 8)):
            where = rng.randrange(len(data))
            if rng.random() < 0.3:  # aim at the footer, where the sizes are declared
                where = rng.randrange(max(0, len(data) - 400), len(data))
            data[where] = rng.randrange(256)
        if rng.random() < 0.1:
            data = data[: rng.randrange(len(data))]
        outputs = render_artifact(BytesSource("d.parquet", bytes(data)), kinds.PARQUET, ctx())
        for out in outputs:
            assert out.failed or out.payload["row_count"] is not None
            json.dumps(out.payload, allow_nan=False)
            outcomes["failed" if out.failed else "ok"] += 1
    assert outcomes["failed"] > 0 and outcomes["ok"] > 0


def test_parquet_is_recognised_by_name_content_type_and_magic_bytes():
    assert kinds.guess_kind("train/data.parquet") == kinds.PARQUET
    assert kinds.guess_kind("dataset", "application/vnd.apache.parquet") == kinds.PARQUET
    # KFP v2 Dataset outputs have no extension: the first bytes say what they are.
    assert kinds.guess_kind("output_dataset") == kinds.OTHER
    assert kinds.refine_kind("output_dataset", parquet_bytes(sample(3))[:512]) == kinds.PARQUET
    (out,) = render_artifact(BytesSource("output_dataset", parquet_bytes(sample(3))), kinds.OTHER, ctx())
    assert out.viewer == "table" and out.payload["format"] == "parquet"
