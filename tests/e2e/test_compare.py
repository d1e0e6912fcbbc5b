"""The compare page in Debian's Chromium, with the whole real stack: MinIO → Kafka → consumer →
Celery worker → daphne (portal) + the web-app origin (docs/compare.md).

One pass through the issue's acceptance list, screenshots in test-results/e2e/compare-*.png:
3 runs picked with the runs list's checkboxes (keyboard), metrics with only-differences,
the ROC overlay, confusion matrices and their difference, a merged table (paged and sorted
on the server), HTML from the sandboxed origin, an image series with its slider; a new
artifact appearing on the open page without reload; a re-pairing by hand; and a run the
user may not see refused.
"""

import json

import pytest
from django.contrib.auth.models import Group

from runs.models import Artifact, Rendition
from runs.services.access import bucket_grant_create
from tests.e2e.conftest import log_in, screenshot
from tests.e2e.test_viewers import all_rendered, portal  # noqa: F401  (the portal fixture)
from tests.helpers import put, wait_for

pytestmark = pytest.mark.e2e

RUNS = ["cmp-e2e-0", "cmp-e2e-1", "cmp-e2e-2"]


def epoch_png(run: int, epoch: int) -> bytes:
    """A picture that changes with the epoch (a bar growing) and the run (its colour)."""
    import io

    from PIL import Image, ImageDraw

    im = Image.new("RGB", (160, 100), (245, 245, 245))
    draw = ImageDraw.Draw(im)
    colour = [(37, 99, 235), (220, 38, 38), (5, 150, 105)][run]
    draw.rectangle([10, 60, 10 + 35 * epoch, 85], fill=colour)
    draw.ellipse([100 - 8 * epoch, 10, 100 + 8 * epoch, 10 + 16 * epoch // 2], outline=colour, width=3)
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def run_files(i: int) -> dict[str, tuple[bytes, str]]:
    run = RUNS[i]
    metrics = {
        "metrics": [
            {"name": "accuracy", "numberValue": [0.91, 0.95, 0.88][i]},
            {"name": "val_loss", "numberValue": [0.31, 0.22, 0.40][i]},
            {"name": "epochs", "numberValue": 3},
        ]
    }
    power = [0.35, 0.25, 0.5][i]
    roc = "fpr,tpr,thresholds\n" + "".join(
        f"{x / 200:.3f},{min(1.0, (x / 200) ** power):.4f},{1 - x / 200:.3f}\n" for x in range(201)
    )
    labels = ["cat", "dog"] + (["bird"] if i == 2 else [])
    cm = "target,predicted,count\n" + "".join(
        f"{t},{p},{(10 + i * 3) if t == p else (2 + i)}\n" for t in labels for p in labels
    )
    table = "sample,label,score\n" + "".join(
        f"{i * 100 + n},{['a', 'b'][n % 2]},{(n * 7 + i) % 23}\n" for n in range(60)
    )
    html = f"<!doctype html><html><body><h1>Report of run {i}</h1></body></html>"
    out = {
        f"{run}/train/metrics.json": (json.dumps(metrics).encode(), "application/json"),
        f"{run}/evaluate/roc.csv": (roc.encode(), "text/csv"),
        f"{run}/evaluate/confusion.csv": (cm.encode(), "text/csv"),
        f"{run}/predict/results.csv": (table.encode(), "text/csv"),
        f"{run}/report/report.html": (html.encode(), "text/html"),
        f"{run}/train/main.log": (
            b"".join(b"run %d epoch %d loss 0.%03d\n" % (i, e, 900 - e) for e in range(200)),
            "text/plain",
        ),
        f"{run}/train/progress.json": (
            json.dumps({"current": 10 * (i + 1), "total": 30}).encode(),
            "application/json",
        ),
    }
    for epoch in (1, 2, 3):
        out[f"{run}/samples/epoch_{epoch}.png"] = (epoch_png(i, epoch), "image/png")
    if i != 2:
        out[f"{run}/report/notes.md"] = (f"# Notes of run {i}\n\nAll good.\n".encode(), "text/markdown")
    return out


def test_compare_three_runs_live(
    minio,
    live_bucket,
    running_consumer,
    celery_worker_process,
    portal,  # noqa: F811  (the fixture imported above)
    browser_page,
    django_user_model,
):
    try:
        check_compare(minio, live_bucket, portal, browser_page, django_user_model)
    finally:
        from django.db import connections

        connections.close_all()


def check_compare(minio, live_bucket, portal, page, django_user_model):  # noqa: F811
    b = live_bucket.name
    uploads = {}
    for i in range(3):
        uploads.update(run_files(i))
    for key, (data, ctype) in uploads.items():
        put(minio, b, key, data, ctype)
    wait_for(lambda: all_rendered(live_bucket, list(uploads)), timeout=120, what="every rendition")
    run_ids = [
        Artifact.objects.filter(bucket=live_bucket, key__startswith=r + "/").first().run_id for r in RUNS
    ]

    user = django_user_model.objects.create_user(username="cmp", password="cmp-pass-123")
    group = Group.objects.create(name="cmp-viewers")
    user.groups.add(group)
    bucket_grant_create(group=group, bucket=live_bucket)

    log_in(page, portal.url, "cmp", "cmp-pass-123")
    # --- pick runs on the runs list with the keyboard ---------------------------------
    button = page.locator("#compare-button")
    assert button.is_disabled()
    for run_id in run_ids:
        box = page.locator(f"#run-{run_id} input.compare-pick")
        box.focus()
        page.keyboard.press("Space")
        assert box.is_checked()
    assert page.locator("#compare-count").inner_text() == "3 runs ticked."
    screenshot(page, "compare-01-runs-list-picked")
    button.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/compare/?runs=*")
    # the form sends one runs= per ticked box; the page shows those three runs
    from urllib.parse import parse_qs, urlsplit

    assert sorted(int(v) for v in parse_qs(urlsplit(page.url).query)["runs"]) == sorted(run_ids)
    assert page.locator("#sec-overview thead th[data-run]").count() == 3
    # the shareable form of the same comparison
    page.goto(f"{portal.url}/compare/?runs={','.join(str(r) for r in run_ids)}")
    page.wait_for_function("() => document.getElementById('live-status').dataset.state === 'live'")
    page.evaluate("window.__notReloaded = true")
    screenshot(page, "compare-02-page")

    # --- metrics: best marked, only-differences -----------------------------------------
    metrics = page.locator("#sec-metrics")
    acc = metrics.locator('tr[data-metric="accuracy"]')
    assert acc.locator("td.best").inner_text().startswith("0.95")
    loss = metrics.locator('tr[data-metric="val_loss"]')
    assert loss.locator("td.best").inner_text().startswith("0.22")  # lower is better
    epochs = metrics.locator('tr[data-metric="epochs"]')
    assert epochs.is_visible()
    metrics.locator(".only-differences").check()
    assert epochs.is_hidden() and acc.is_visible()
    metrics.screenshot(path=str(screenshot_path("compare-03-metrics-only-differences")))

    # --- ROC: all three runs in one chart, AUC per run -----------------------------------
    roc = page.locator("#sec-roc .roc-compare").first
    roc.locator("canvas").first.wait_for()
    legend = roc.locator(".roc-legend li")
    assert legend.count() == 3 and all("AUC" in t for t in legend.all_inner_texts())
    assert roc.locator(".u-legend .u-series").count() >= 4  # FPR + 3 runs (+ chance)
    roc.locator(".u-over").scroll_into_view_if_needed()
    box = roc.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.4, steps=5)
    # hover: every run's tpr @ threshold at its own nearest point
    page.wait_for_function(
        "(el) => (el.textContent.match(/@/g) || []).length >= 3",
        arg=roc.locator(".u-legend").element_handle(),
    )
    page.locator("#sec-roc").screenshot(path=str(screenshot_path("compare-04-roc-overlay")))

    # --- confusion matrices: side by side and B − A ---------------------------------------
    cm = page.locator("#sec-confusion_matrix")
    assert cm.locator(".cm-viewer").count() == 3
    diff = cm.locator(".cm-diff").first
    diff.locator(".cm-diff-table td").first.wait_for()
    # B = run 2, A = run 1: the diagonal grew by 3
    assert diff.locator(".cm-diff-table tbody tr").first.locator("td").first.inner_text() == "+3"
    diff.locator(".cm-b").select_option(index=2)  # run 3 has a "bird" label the others lack
    assert "only in B: bird" in diff.locator(".cm-diff-note").inner_text()
    diff.locator(".cm-diff-normalise").check()
    cm.screenshot(path=str(screenshot_path("compare-05-confusion-difference")))

    # --- merged table: one table with a run column, paged and sorted on the server ----------
    merged = page.locator("#sec-table .merged-table")
    assert merged.count() == 1
    assert "of 180" in merged.locator(".facts").inner_text()
    first_cells = merged.locator("tbody tr").first.locator("td").all_inner_texts()
    assert first_cells[0] == str(run_ids[0])
    merged.locator('button[data-page="next"]').click()
    page.wait_for_function(
        "(el) => el.textContent.startsWith('Rows 51')", arg=merged.locator(".row-range").element_handle()
    )
    assert merged.locator("tbody tr").first.locator("td").first.inner_text() == str(run_ids[0])
    merged.locator('button[data-page="last"]').click()
    page.wait_for_function(
        "(el) => el.textContent === 'Rows 131–180'", arg=merged.locator(".row-range").element_handle()
    )
    assert merged.locator("tbody tr").last.locator("td").first.inner_text() == str(run_ids[2])
    merged.locator('th[data-col="2"]').click()  # score, ascending, across all runs
    merged.locator('th[data-col="2"]').click()  # descending
    page.wait_for_function(
        "(tbody) => tbody.rows.length && tbody.rows[0].cells[3].textContent === '22'"
        " && tbody.rows[tbody.rows.length - 1].cells[3].textContent >= '0'",
        arg=merged.locator("tbody").element_handle(),
        timeout=60_000,
    )
    scores = [int(t) for t in merged.locator("tbody tr td:nth-child(4)").all_inner_texts()]
    assert scores == sorted(scores, reverse=True)
    assert (
        len({c for c in merged.locator("tbody tr td:nth-child(1)").all_inner_texts()}) > 1
    )  # rows of several runs
    page.locator("#sec-table").screenshot(path=str(screenshot_path("compare-06-merged-table")))

    # --- HTML side by side, from the sandboxed origin -------------------------------------------
    frames = page.locator("#sec-web_app iframe.webapp")
    assert frames.count() == 3
    assert all(f.get_attribute("src").startswith("http://localhost:") for f in frames.all())
    assert frames.first.get_attribute("sandbox") == "allow-scripts"
    for i in range(3):
        heading = page.frame_locator("#sec-web_app iframe.webapp").nth(i).locator("h1")
        assert heading.inner_text(timeout=30_000) == f"Report of run {i}"
    page.locator("#sec-web_app").screenshot(path=str(screenshot_path("compare-07a-html")))

    # --- images: runs × series, slider over the epochs -----------------------------------------
    slider = page.locator("#sec-image .series-slider").first
    assert slider.get_attribute("max") == "2"
    visible = page.locator("#sec-image .series-cell .series-frame:not([hidden]) img")
    assert visible.count() == 3
    slider.focus()
    page.keyboard.press("Home")
    assert page.locator("#sec-image .series-step").first.inner_text() == "1"
    assert page.locator('#sec-image .series-frame[data-step="0"]:not([hidden])').count() == 3
    page.wait_for_function(
        "() => [...document.querySelectorAll('#sec-image .series-frame:not([hidden]) img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    page.locator("#sec-image").screenshot(path=str(screenshot_path("compare-07-images")))

    # --- live: a new artifact lands in one run and appears without a reload ---------------------
    put(minio, b, f"{RUNS[1]}/samples/epoch_4.png", epoch_png(1, 4), "image/png")
    put(minio, b, f"{RUNS[2]}/report/notes-final.md", b"# Final notes of run 2\n", "text/markdown")
    page.wait_for_function(
        "() => { const s = document.querySelector('#sec-image .series-slider'); return s && s.max === '3'; }",
        timeout=60_000,
    )
    page.locator('#sec-markdown tr[data-key="report/notes-final.md"]').wait_for(timeout=60_000)
    page.wait_for_function(
        "() => !!document.querySelector("
        "'#sec-markdown tr[data-key=\"report/notes-final.md\"] .markdown-body')",
        timeout=60_000,
    )
    # a changed metric: run 1 writes a new metrics file; the best mark moves to it
    better = {
        "metrics": [{"name": "accuracy", "numberValue": 0.99}, {"name": "val_loss", "numberValue": 0.31}]
    }
    put(minio, b, f"{RUNS[0]}/train/metrics.json", json.dumps(better).encode(), "application/json")
    page.wait_for_function(
        "() => { const td = document.querySelector('#sec-metrics tr[data-metric=\"accuracy\"] td.best');"
        " return td && td.textContent.startsWith('0.99'); }",
        timeout=60_000,
    )
    # the only-differences choice survived the section's swap
    assert page.locator("#sec-metrics .only-differences").is_checked()
    assert page.evaluate("window.__notReloaded") is True
    screenshot(page, "compare-08-live-new-artifacts")

    # --- re-pair by hand: run 3's notes-final.md is its notes.md --------------------------------
    odd = Artifact.objects.get(bucket=live_bucket, key=f"{RUNS[2]}/report/notes-final.md")
    page.locator("#repair-artifact").select_option(f"{odd.run_id}:{odd.pk}")
    page.locator("#repair-to").fill("report/notes.md")
    page.locator(".repair-form button[type=submit]").click()
    page.wait_for_url("**pair=*")
    row = page.locator('#sec-markdown tr[data-key="report/notes.md"]')
    assert row.locator("td.absent").count() == 0 and "Final notes of run 2" in row.inner_text()
    page.locator("#sec-matching").screenshot(path=str(screenshot_path("compare-09-re-paired")))
    page.locator("#sec-markdown").screenshot(path=str(screenshot_path("compare-10-markdown-re-paired")))

    # --- a run the user may not see is refused, like a missing one ------------------------------
    narrow = django_user_model.objects.create_user(username="narrow", password="narrow-pass-123")
    g2 = Group.objects.create(name="cmp-narrow")
    narrow.groups.add(g2)
    bucket_grant_create(group=g2, bucket=live_bucket, key_prefix=RUNS[0])
    page.context.clear_cookies()
    log_in(page, portal.url, "narrow", "narrow-pass-123")
    refused = page.goto(f"{portal.url}/compare/?runs={run_ids[0]},{run_ids[1]}")
    missing = page.goto(f"{portal.url}/compare/?runs={run_ids[0]},999999999")
    assert refused.status == missing.status == 404
    page.goto(f"{portal.url}/compare/?runs={run_ids[0]},{run_ids[1]}")
    screenshot(page, "compare-11-refused")
    assert Rendition.objects.filter(artifact__run_id__in=run_ids).exists()


def screenshot_path(name: str):
    from tests.e2e.conftest import RESULTS

    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS / f"{name}.png"
