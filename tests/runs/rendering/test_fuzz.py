"""Seeded fuzzing of the renderers, in this process (issue 8, finding 5).

Every generated archive, CSV, image and KFP metadata input (tests/runs/
rendering/fuzz.py) goes through ``render_artifact`` exactly as the worker
calls it, under budgets set smaller than the defaults. Each must end as
outputs that are ready (a payload PostgreSQL accepts: strict JSON) or failed
with a reason: never an exception, never longer than PER_INPUT_S, never a
Python allocation above PEAK_BYTES (tracemalloc sees the bytes objects zlib,
bz2, tarfile and csv create; Pillow's pixel buffers are bounded by
MAX_IMAGE_PIXELS instead). The real-worker variant, with its peak RSS, is in
tests/runs/test_security_live.py.
"""

import json
import time
import tracemalloc

import pytest

from runs import kinds
from runs.rendering.base import BytesSource, Context, Output
from runs.rendering.registry import render_artifact
from tests.runs.rendering import fuzz

SEED = 20261129
CASES = 400
TOTAL_S = 60
PER_INPUT_S = 5
PEAK_BYTES = 64 * 1024 * 1024
MiB = 1024 * 1024


@pytest.fixture
def budgets(settings):
    settings.ARCHIVE_MAX_MEMBER_BYTES = 4 * MiB
    settings.ARCHIVE_MAX_UNPACKED_BYTES = 5 * MiB
    settings.TEXT_MAX_BYTES = 2 * MiB
    settings.JSON_MAX_BYTES = 1 * MiB
    settings.MARKDOWN_MAX_BYTES = 64 * 1024
    settings.TABLE_MAX_LINE_BYTES = 1 * MiB
    settings.TABLE_SAMPLE_BYTES = 64 * 1024
    settings.TABLE_INDEX_CHUNK_BYTES = 64 * 1024
    settings.MAX_IMAGE_PIXELS = 4_000_000
    settings.IMAGE_MAX_BYTES = 4 * MiB


def fuzz_ctx() -> Context:
    def store(name, data, content_type):
        assert isinstance(data, bytes)
        return f"k/{name}"

    def publish(outputs):
        for o in outputs:
            check_output(o)

    return Context(
        store=store,
        publish=publish,
        store_source=lambda source: {"bucket": "b", "key": "k"},
        fetch=lambda uri: [],
    )


def check_output(o: Output) -> None:
    assert isinstance(o, Output)
    if o.failed:
        assert isinstance(o.error, str) and o.error.strip(), o
        return
    json.dumps(o.payload, allow_nan=False)  # what PostgreSQL's jsonb will accept


def test_fuzzed_inputs_end_ready_or_failed_with_a_reason(budgets, capsys):
    started = time.monotonic()
    slowest = (0.0, "")
    peak_max = (0, "")
    counts = {"ready": 0, "failed": 0}
    tracemalloc.start()
    try:
        for i, (kind, name, data) in enumerate(fuzz.cases(SEED, CASES)):
            where = f"case {i} ({kind}, {name}, {len(data)} bytes, seed {SEED})"
            tracemalloc.reset_peak()
            t0 = time.monotonic()
            try:
                outputs = render_artifact(BytesSource(name, data), kinds.guess_kind(name), fuzz_ctx())
            except Exception as exc:  # noqa: BLE001 - the point of the test
                pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
            spent = time.monotonic() - t0
            peak = tracemalloc.get_traced_memory()[1]
            assert outputs, where
            for o in outputs:
                check_output(o)
                counts["failed" if o.failed else "ready"] += 1
            assert spent < PER_INPUT_S, f"{where}: {spent:.1f} s"
            assert peak < PEAK_BYTES, f"{where}: {peak / MiB:.0f} MiB"
            slowest = max(slowest, (spent, where))
            peak_max = max(peak_max, (peak, where))
            assert time.monotonic() - started < TOTAL_S, f"the fuzz run passed {TOTAL_S} s at {where}"
    finally:
        tracemalloc.stop()
    with capsys.disabled():
        print(
            f"\n[measured] fuzz in-process: {CASES} inputs in {time.monotonic() - started:.1f} s, "
            f"{counts['ready']} ready / {counts['failed']} failed outputs; slowest {slowest[0]:.2f} s "
            f"({slowest[1]}); largest Python allocation peak {peak_max[0] / MiB:.1f} MiB ({peak_max[1]})"
        )
    assert counts["ready"] and counts["failed"]  # the generator reaches both ends
