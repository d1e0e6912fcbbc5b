"""Sorted copies of tables (runs/rendering/table.py build_sorted, read_sorted_page): pure functions.

The worker builds them; the portal reads one small range per page
(tests/runs/test_table_sort_live.py has the real path).
"""

import json
import random

import pytest

from runs.rendering import table
from runs.rendering.base import BytesSource, Context


def payload_of(data: bytes) -> dict:
    (out,) = table.render(BytesSource("t.csv", data), Context(store=lambda *a: "k"))
    return out.payload


def reader(body: bytes, reads: list):
    def read(offset, length):
        reads.append(length)
        yield body[offset : offset + length]

    return read


@pytest.fixture
def data():
    rng = random.Random(8)
    rows = [(i, rng.random() * 100, rng.choice(["tulip", "Rose", "daisy", "lily"])) for i in range(1234)]
    text = "id,score,flower\n" + "".join(f"{i},{s:.6f},{f}\n" for i, s, f in rows)
    return text.encode(), rows


def test_any_page_of_a_sorted_copy_in_both_directions(data):
    raw, rows = data
    payload = payload_of(raw)
    body, meta = table.build_sorted(payload, [raw[i : i + 1000] for i in range(0, len(raw), 1000)], column=1)
    assert meta["rows"] == 1234 and meta["offsets"][-1] == len(body)
    ascending = [f"{s:.6f}" for _, s, _ in sorted(rows, key=lambda r: r[1])]
    for start, count, desc in [
        (0, 50, False),
        (1200, 50, False),
        (37, 250, False),
        (0, 50, True),
        (1230, 50, True),
        (99, 101, True),
        (5000, 10, False),
    ]:
        reads = []
        page = table.read_sorted_page(meta, reader(body, reads), start=start, count=count, descending=desc)
        expected = (ascending[::-1] if desc else ascending)[start : start + count]
        assert [r[1] for r in page] == expected, (start, count, desc)
        # one ranged read, of at most the rows asked for plus two offset blocks
        assert len(reads) <= 1 and all(n <= (count + 2 * meta["every"]) * 80 for n in reads)


def test_text_sorts_case_insensitively_and_rows_are_fitted(data, settings):
    settings.TABLE_MAX_CELL_CHARS = 3
    raw, _ = data
    body, _meta = table.build_sorted(payload_of(raw), [raw], column=2)
    first = json.loads(body.split(b"\n", 1)[0])
    assert first[2] == "dai…" and len(first) == 3


def test_a_sorted_copy_of_a_headerless_ragged_file():
    raw = b"3,7\n1\n2,5,extra\n"  # a first row of numbers is data
    body, _meta = table.build_sorted(payload_of(raw), [raw], column=0)
    assert [json.loads(line) for line in body.splitlines()] == [["1", ""], ["2", "5"], ["3", "7"]]
