"""Run status in a real browser (issue 10, item 4): a run turns idle on the open runs
list and run page without a reload, through the real push path (lifecycle service ->
changes_on_commit -> Redis -> daphne -> browser), and wakes up when an event arrives."""

from datetime import timedelta

import pytest

from runs.models import Run
from runs.services.lifecycle import runs_mark_idle
from tests.e2e.conftest import log_in, screenshot
from tests.factories import BASE_TIME, BucketFactory
from tests.runs.portal_helpers import ingest, user_with_grant

pytestmark = pytest.mark.e2e


def wait_text(page, locator, text: str) -> None:
    page.wait_for_function(
        "([el, text]) => el.textContent === text", arg=[locator.element_handle(), text], timeout=20_000
    )


def test_a_run_turns_idle_live_and_wakes_on_an_event(
    transactional_db, live_server_daphne, browser_page, django_user_model, settings
):
    page, server = browser_page, live_server_daphne
    bucket = BucketFactory(name="status-bucket")
    ingest(bucket, "newer-run/prepare/data.csv", seconds=100)
    ingest(bucket, "quiet-run/prepare/data.csv", "quiet-run/train/model.bin", seconds=0)
    quiet = Run.objects.get(run_key="quiet-run")
    user_with_grant(django_user_model, "watcher", bucket)

    log_in(page, server.url, "watcher", "pw-watcher")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    badge = page.locator(f"#run-{quiet.pk} [data-f=status]")
    assert badge.inner_text() == "active"
    page.evaluate("window.__noReload = true")

    # Nothing arrives for RUN_IDLE_AFTER_S: the upkeep turns it idle and the list shows it.
    later = quiet.last_event_at + timedelta(seconds=settings.RUN_IDLE_AFTER_S + 1)
    assert runs_mark_idle(now=later) == 1
    wait_text(page, badge, "idle")
    assert badge.get_attribute("class") == "status status-idle"
    # A status change is not activity: the run keeps its place below the newer one.
    order = page.locator("#run-rows tr").evaluate_all("rows => rows.map(r => r.id)")
    assert order.index(f"run-{quiet.pk}") > order.index(f"run-{Run.objects.get(run_key='newer-run').pk}")
    assert page.evaluate("window.__noReload") is True, "the list reloaded"
    screenshot(page, "run-status-list-idle")

    # The run page: run and steps idle; an event wakes the run and its step, live.
    page.goto(f"{server.url}/runs/{quiet.pk}/")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    run_badge = page.locator("#run-meta [data-f=status]")
    train = quiet.steps.get(name="train")
    prepare = quiet.steps.get(name="prepare")
    step_badge = page.locator(f"#step-{train.pk} [data-f=status]")
    assert (run_badge.inner_text(), step_badge.inner_text()) == ("idle", "idle")
    page.evaluate("window.__noReload = true")

    ingest(bucket, "quiet-run/train/metrics.json", seconds=(later - BASE_TIME).total_seconds())
    wait_text(page, run_badge, "active")
    wait_text(page, step_badge, "active")
    assert page.locator(f"#step-{prepare.pk} [data-f=status]").inner_text() == "idle"

    # And idle again, steps included (the page refetches the steps' statuses); the
    # newer run has been quiet long enough by now too.
    assert runs_mark_idle(now=later + timedelta(seconds=2 * settings.RUN_IDLE_AFTER_S)) == 2
    wait_text(page, run_badge, "idle")
    wait_text(page, step_badge, "idle")
    assert page.evaluate("window.__noReload") is True, "the run page reloaded"
    screenshot(page, "run-status-run-page-idle")
