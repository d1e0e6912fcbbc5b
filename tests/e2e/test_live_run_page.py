"""The live portal in a real browser (issue 3 acceptance): log in, watch a run, upload
files with the MinIO client, see them appear without reload; survive a daphne restart."""

import pytest
from django.contrib.auth.models import Group

from runs.models import Run
from runs.services.access import bucket_grant_create
from tests.e2e.conftest import log_in, screenshot
from tests.helpers import put, wait_for

pytestmark = pytest.mark.e2e


def artifact_row(page, name: str):
    return page.locator("li.artifact a.name", has_text=name)


def test_artifacts_appear_live_and_after_a_daphne_restart(
    minio, live_bucket, running_consumer, kafka_arrivals, live_server_daphne, browser_page, django_user_model
):
    page, server = browser_page, live_server_daphne
    user = django_user_model.objects.create_user(username="viewer", password="viewer-pass-123")
    group = Group.objects.create(name="viewers")
    user.groups.add(group)
    bucket_grant_create(group=group, bucket=live_bucket)

    # Anonymous visitors are sent to the login form; log in through it.
    page.goto(server.url + "/")
    assert "/accounts/login/" in page.url
    log_in(page, server.url, "viewer", "viewer-pass-123")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=10_000)

    # A new run appears at the top of the runs list without reload.
    put(minio, live_bucket.name, "e2e-run/prepare/first.txt")
    row = page.locator("#run-rows tr", has_text="e2e-run")
    row.wait_for(timeout=10_000)
    run = Run.objects.get(bucket=live_bucket, run_key="e2e-run")
    # Its count and last event update in place.
    page.evaluate("window.__noReload = true")
    put(minio, live_bucket.name, "e2e-run/prepare/zero.txt")
    count = row.locator("[data-f=artifact_count]")
    page.wait_for_function("el => el.textContent === '2'", arg=count.element_handle(), timeout=10_000)
    assert page.evaluate("window.__noReload") is True, "the list reloaded"
    screenshot(page, "01-runs-list-live")

    # Open the run; it shows the first artifact and is live.
    row.locator("a").click()
    page.wait_for_url(f"{server.url}/runs/{run.pk}/")
    artifact_row(page, "first.txt").wait_for(timeout=5_000)
    # Generous: on a loaded 2-core machine a handshake can wait behind other work.
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    page.evaluate("window.__noReload = true")

    put(minio, live_bucket.name, "e2e-run/train/second.txt", b"second file")
    # It appears without reload; how fast is bench/latency.py's job, not this test's.
    artifact_row(page, "second.txt").wait_for(timeout=20_000)
    kafka_arrivals.wait("e2e-run/train/second.txt")
    assert page.evaluate("window.__noReload") is True, "the page reloaded"
    assert page.locator("#step-" + str(run.steps.get(name="train").pk)).is_visible()
    screenshot(page, "02-run-page-live")

    # Restart daphne while two more files are uploaded: both appear after the reconnect.
    server.stop()
    page.locator('#live-status[data-state="off"]').wait_for(timeout=10_000)
    screenshot(page, "03-disconnected")
    put(minio, live_bucket.name, "e2e-run/train/third.txt")
    put(minio, live_bucket.name, "e2e-run/evaluate/fourth.txt")
    wait_for(lambda: Run.objects.get(pk=run.pk).artifact_count == 5, what="both files stored")
    server.start()
    page.locator('#live-status[data-state="live"]').wait_for(timeout=15_000)
    artifact_row(page, "third.txt").wait_for(timeout=5_000)
    artifact_row(page, "fourth.txt").wait_for(timeout=5_000)
    assert page.evaluate("window.__noReload") is True, "the page reloaded"
    assert page.locator("li.artifact").count() == 5
    # Each new row got its preview fragment from runs:artifact_preview.
    for name in ("third.txt", "fourth.txt"):
        row = page.locator("li.artifact", has=page.locator("a.name", has_text=name))
        row.locator("[data-preview] a.download").wait_for(timeout=5_000)
    assert page.locator("#run-meta [data-f=artifact_count]").inner_text() == "5"
    screenshot(page, "04-after-reconnect")

    # Phone width: nothing overflows sideways; the keyboard reaches the skip link first.
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    screenshot(page, "05-phone")
