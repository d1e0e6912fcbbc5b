"""Compare page: server time and queries for 20 runs × 100 artifacts, and the ROC overlay of
50 runs × 1,000 points painted in Chromium (issue 13 targets: p99 <= 300 ms, queries
independent of the number of artifacts, ROC overlay <= 1 s). Run with ``make bench B=compare``.

Server part: ``/compare/?runs=…`` through the whole Django stack in-process with the test
client (middleware, session, access check, the selector's queries, every section's
templates), as bench/run_page.py does. Each run holds 100 artifacts with ready renditions:
metrics, a ROC curve, a confusion matrix, a table, Markdown, HTML, a log, progress, 40 images
of two series and 52 other files. Queries are counted for 10 and 100 artifacts per run.

Browser part: 50 runs whose ROC renditions hold 1,000 points each (as with
ROC_MAX_POINTS=1000), the page served by a real daphne, opened in Debian's Chromium; the
figure is the time from navigation start to the overlay's first paint (the page cuts each
curve to COMPARE_ROC_POINTS on the server, shape-preserving, before sending it).
"""

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import ROOT, median, percentile, report, server_times, setup_django

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
ARTIFACTS = int(os.environ.get("BENCH_ARTIFACTS", "100"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "40"))
ROC_RUNS = int(os.environ.get("BENCH_ROC_RUNS", "50"))
ROC_POINTS = int(os.environ.get("BENCH_ROC_POINTS", "1000"))
CHROMIUM = "/usr/bin/chromium"


def _event(bucket: str, key: str, at: datetime, offset: int):
    from runs.events import EventAction, ObjectEvent

    order = int(at.timestamp() * 1e9)
    return ObjectEvent(
        bucket=bucket,
        key=key,
        action=EventAction.CREATED,
        event_name="s3:ObjectCreated:Put",
        event_time=at,
        order=order,
        size=1000,
        etag=f"etag-{offset}",
        content_type="application/octet-stream",
        sequencer=f"{order:X}",
        topic="bench",
        partition=0,
        offset=offset,
    )


def _keys(run_key: str, artifacts: int) -> list[str]:
    special = [
        "train/metrics.json",
        "evaluate/roc.csv",
        "evaluate/confusion.csv",
        "predict/results.csv",
        "report/notes.md",
        "report/report.html",
        "train/main.log",
        "train/progress.json",
    ]
    images = [f"samples/epoch_{e:03d}.png" for e in range(20)] + [f"masks/step-{e}.png" for e in range(20)]
    rest = [f"step-{i % 5}/file-{i:03d}.bin" for i in range(max(0, artifacts - len(special) - len(images)))]
    return [f"{run_key}/{k}" for k in (special + images + rest)[:artifacts]]


def _roc(points: int, power: float) -> dict:
    from runs.rendering import roc

    text = "fpr,tpr,thresholds\n" + "".join(
        f"{i / (points - 1):.5f},{(i / (points - 1)) ** power:.5f},{1 - i / (points - 1):.5f}\n"
        for i in range(points)
    )
    from django.conf import settings

    # As the renderer makes it with ROC_MAX_POINTS >= points (runs/rendering/roc.py render).
    return roc.curve(text, max_points=points, overlay_points=settings.COMPARE_ROC_POINTS)


def _payload(name: str, i: int) -> tuple[str, dict]:
    """A rendition payload for artifact ``name`` of run number ``i``, as the renderers make it."""
    from runs.rendering import confusion_matrix, markdown, metrics

    if name.endswith("metrics.json"):
        items = [
            {"name": "accuracy", "numberValue": 0.8 + i / 200},
            {"name": "loss", "numberValue": 0.5 - i / 100},
        ]
        return "metrics", metrics.parse(json.dumps({"metrics": items}))
    if name.endswith("roc.csv"):
        return "roc", _roc(1000, 0.2 + i / 50)
    if name.endswith("confusion.csv"):
        labels = ["a", "b", "c", "d"]
        return "confusion_matrix", confusion_matrix.matrix(
            "".join(f"{t},{p},{20 + i if t == p else 2}\n" for t in labels for p in labels)
        )
    if name.endswith("results.csv"):
        cols = [{"name": n, "type": "number"} for n in ("sample", "score", "loss")]
        rows = [[str(r), str(r * 0.01), str(1 - r * 0.01)] for r in range(50)]
        return "table", {
            "columns": cols,
            "rows": rows,
            "page_rows": 50,
            "row_count": 500,
            "indexed": True,
            "sortable": True,
            "source": {"bucket": "bench", "key": f"results-{i}.csv"},
        }
    if name.endswith(".md"):
        return "markdown", {"html": markdown.to_html(f"# Run {i}\n\nSome *notes* here.\n")}
    if name.endswith(".html"):
        return "web_app", {"size": 100}
    if name.endswith(".log"):
        text = "".join(f"epoch {e} loss 0.{900 - e}\n" for e in range(60))
        return "text", {"text": text, "start": 0, "end": len(text), "size": len(text), "truncated": False}
    if name.endswith("progress.json"):
        return "progress", {"percent": 50.0, "current": 5, "total": 10, "message": "epoch 5/10"}
    if name.endswith(".png"):
        return "image", {
            "format": "PNG",
            "width": 640,
            "height": 480,
            "thumb_width": 256,
            "thumb_height": 192,
        }
    return "other", {"content_type": "application/octet-stream"}


def seed_runs(bucket, prefix: str, runs: int, artifacts: int, *, roc_only: bool = False) -> list[int]:
    """Runs ``<prefix>-<i>`` with ``artifacts`` artifacts each and a ready rendition per artifact."""
    from runs.models import Artifact, Rendition, Run
    from runs.services.ingest import ingest_events

    keys_of = {f"{prefix}-{i}": (["evaluate/roc.csv"] if roc_only else None) for i in range(runs)}
    ids = []
    start = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    offset = 0
    for i, run_key in enumerate(keys_of):
        keys = [f"{run_key}/{k}" for k in keys_of[run_key]] if roc_only else _keys(run_key, artifacts)
        if not Run.objects.filter(bucket=bucket, run_key=run_key, artifact_count=len(keys)).exists():
            events = []
            for key in keys:
                offset += 1
                events.append(
                    _event(bucket.name, key, start + timedelta(seconds=i, microseconds=offset), offset)
                )
            ingest_events(events=events)
        run = Run.objects.get(bucket=bucket, run_key=run_key)
        ids.append(run.pk)
        # Made afresh each time: the payloads follow the renderers as they are now.
        Rendition.objects.filter(artifact__run=run).delete()
        missing = Artifact.objects.filter(run=run)
        rows = []
        for artifact in missing:
            viewer, payload = (
                ("roc", _roc(ROC_POINTS, 0.15 + i / (2 * runs))) if roc_only else _payload(artifact.name, i)
            )
            preview_key = f"bench/{artifact.pk}" if viewer in ("web_app", "image") else ""
            rows.append(
                Rendition(
                    artifact=artifact,
                    etag=artifact.etag,
                    viewer=viewer,
                    payload=payload,
                    status="ready",
                    preview_key=preview_key,
                )
            )
        Rendition.objects.bulk_create(rows)
    return ids


def count_queries(client, url: str) -> int:
    from django.db import connection

    queries = []
    # Counted with a wrapper: Django clears connection.queries at each request start.
    with connection.execute_wrapper(lambda execute, sql, *a: queries.append(sql) or execute(sql, *a)):
        assert client.get(url).status_code == 200
    return len(queries)


def roc_paint_ms(db_url: str, url_path: str, cookie: str) -> tuple[float, float]:
    """(ms from navigation to the overlay's first paint, ms of the chart's own build and draw),
    in Debian's Chromium against a real daphne; the median of 5 loads."""
    import socket

    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "vizsite.settings.bench",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    # DEBUG is off here, so WhiteNoise serves STATIC_ROOT (gitignored): collect the page's scripts.
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    log = open(Path("/tmp") / f"bench-compare-daphne-{port}.log", "w")
    daphne = str(Path(sys.executable).with_name("daphne"))
    proc = subprocess.Popen(
        [daphne, "-b", "127.0.0.1", "-p", str(port), "vizsite.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        import urllib.request

        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"daphne did not start; see {log.name}") from None
                time.sleep(0.1)
        name, value = cookie.split("=", 1)
        firsts, charts = [], []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            context = browser.new_context(viewport={"width": 1200, "height": 900})
            context.add_cookies([{"name": name, "value": value, "url": f"http://127.0.0.1:{port}"}])
            page = context.new_page()
            for _ in range(6):
                page.goto(f"http://127.0.0.1:{port}{url_path}")
                chart = page.locator(".roc-overlay").first
                page.wait_for_function(
                    "(el) => !!el.dataset.paintAt", arg=chart.element_handle(), timeout=30_000
                )
                firsts.append(float(chart.get_attribute("data-paint-at")))
                charts.append(float(chart.get_attribute("data-paint-ms")))
            browser.close()
        return median(firsts[1:]), median(charts[1:])  # the first load warms the caches
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def main() -> None:
    db_url = setup_django("bench")
    from _live import session_cookie
    from django.contrib.auth import get_user_model
    from django.test import Client

    from runs.models import Bucket

    bucket, _ = Bucket.objects.get_or_create(name="bench-compare")
    big = seed_runs(bucket, f"cmp{ARTIFACTS}", RUNS, ARTIFACTS)
    small = seed_runs(bucket, "cmp10", RUNS, 10)
    roc_runs = seed_runs(bucket, f"roc{ROC_POINTS}", ROC_RUNS, 1, roc_only=True)

    user, _ = get_user_model().objects.get_or_create(username="bench")
    user.is_superuser = True
    user.save()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    url = "/compare/?runs=" + ",".join(map(str, big))
    for _ in range(3):
        assert client.get(url).status_code == 200
    size = len(client.get(url).content)
    queries = count_queries(client, url)
    queries_small = count_queries(client, "/compare/?runs=" + ",".join(map(str, small)))
    load_before = os.getloadavg()[0]
    cpu_started = time.process_time()
    timings = server_times(client, url, REQUESTS)
    cpu_ms = (time.process_time() - cpu_started) * 1000 / REQUESTS
    roc_url = "/compare/?runs=" + ",".join(map(str, roc_runs))
    roc_server = server_times(client, roc_url, 10)
    first_paint, chart_ms = roc_paint_ms(db_url, roc_url, session_cookie())
    report(
        {
            "runs": RUNS,
            "artifacts_per_run": ARTIFACTS,
            "requests": REQUESTS,
            "html_kb": round(size / 1024),
            "compare_p50_ms": round(median(timings), 1),
            "compare_p99_ms": round(percentile(timings, 99), 1),
            # This process's CPU per request (PostgreSQL's share not included): steadier than
            # wall time on a shared machine; the load average says how shared it was.
            "compare_cpu_ms_per_request": round(cpu_ms, 1),
            "load_average_1m": round(load_before, 1),
            "queries": queries,
            "queries_10_artifacts_per_run": queries_small,
            "roc_runs": ROC_RUNS,
            "roc_points_per_run": ROC_POINTS,
            "roc_server_p50_ms": round(median(roc_server), 1),
            "roc_chart_ms": round(chart_ms, 1),
            "roc_50_runs_ms": round(first_paint, 1),
        }
    )


if __name__ == "__main__":
    main()
