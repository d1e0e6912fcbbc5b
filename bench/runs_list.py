"""Runs list server time at 200,000 runs and 5,000,000 artifacts (issue 13 item 5: "the runs
list, its filters, sorts and metric columns stay fast"). Run with ``make bench B=runs_list``.

Seeds once, with SQL, into its own database (``<db>_bench_runs_list``;
bench/_runs_list_seed.py: 10 buckets, 25 namespaces, 25 artifacts per run,
metrics on 90 % of the runs); migration 0014 (or a later seed) fills RunMetric.
Then renders ``/`` through the whole Django stack in-process (test client, no
network) as a superuser and as a user with one grant (one bucket: 20,000 runs):

- first page;
- deep page: the page after the 100,000th run (the reader: after their 10,000th),
  reached by a cursor as the Next links give it;
- filtered pages: status + bucket, and a search (``q``);
- metric-sorted pages: first, and deep (after the 100,000th / 10,000th run).

p50/p99 and SQL queries per page for each; the last line is the JSON object.
Targets (the issue): each p99 at most 300 ms.
"""

from __future__ import annotations

import os
import time

from _common import median, percentile, report, server_times, setup_django

RUNS = int(os.environ.get("BENCH_RUNS", "200000"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "30"))


def deep_cursor(*, user, filters, offset: int) -> str:
    """The cursor a reader would hold after following Next to ``offset`` runs (found here
    with OFFSET once, outside the timings)."""
    from runs.selectors.runs_list import Cursor, _segment_keys, _segments, cursor_encode, runs_filtered

    keys, descending = _segment_keys(filters)[0]
    qs = _segments(runs_filtered(user=user, filters=filters), filters)[0]
    row = qs.order_by(*(f"-{k}" if descending else k for k in keys)).values_list(*keys)[offset - 1]
    return cursor_encode(Cursor(order_key=filters.order_key, segment=0, values=tuple(row)))


def queries_of(client, url: str) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def main() -> None:
    setup_django(os.environ.get("BENCH_DB", "bench_runs_list"))
    from urllib.parse import quote

    from _runs_list_seed import PREFIX, seed
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from runs.models import Bucket, RunMetric
    from runs.selectors.runs_list import RunFilters
    from runs.services.access import bucket_grant_create
    from runs.services.run_metrics import run_metrics_backfill

    seconds = seed(RUNS)
    if seconds or not RunMetric.objects.exists():
        started = time.monotonic()
        run_metrics_backfill()
        print(f"RunMetric backfilled in {time.monotonic() - started:.0f} s")
    User = get_user_model()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_superuser": True})
    reader, _ = User.objects.get_or_create(username="bench-reader")
    group, _ = Group.objects.get_or_create(name="bench-list-readers")
    reader.groups.add(group)
    granted = Bucket.objects.get(name=f"{PREFIX}0")
    if not granted.grants.filter(group=group).exists():
        bucket_grant_create(group=group, bucket=granted)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM runs_artifact a JOIN runs_bucket b ON b.id = a.bucket_id"
            " WHERE b.name LIKE %s",
            [PREFIX + "%"],
        )
        (artifacts,) = cursor.fetchone()
    figures = {"runs": RUNS, "artifacts": artifacts, "seed_s": round(seconds)}
    worst: dict[str, float] = {}
    for who, user, deep in (("admin", admin, RUNS // 2), ("reader", reader, RUNS // 20)):
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        recent = deep_cursor(user=user, filters=RunFilters(), offset=deep)
        by_metric = deep_cursor(user=user, filters=RunFilters(metric="accuracy"), offset=deep)
        pages = {
            "list": ["/"],
            "deep_page": [f"/?after={quote(recent)}"],
            "filter": [f"/?status=idle&bucket={PREFIX}0", "/?q=train-run-1234"],
            "metric_sort": [
                "/?metric=accuracy&order=desc",
                f"/?metric=accuracy&order=desc&after={quote(by_metric)}",
            ],
        }
        for kind, urls in pages.items():
            for i, url in enumerate(urls):
                name = f"{who}_{kind}{'' if i == 0 else f'_{i + 1}'}"
                figures[f"{name}_queries"] = queries_of(client, url)  # also warms
                times = server_times(client, url, REQUESTS)
                figures[f"{name}_p50_ms"] = round(median(times), 1)
                figures[f"{name}_p99_ms"] = round(percentile(times, 99), 1)
                worst[kind] = max(worst.get(kind, 0.0), figures[f"{name}_p99_ms"])
    # The headline figures: the worst p99 of each kind, over both users.
    figures.update({f"{kind}_p99_ms": value for kind, value in worst.items()})
    report(figures)


if __name__ == "__main__":
    main()
