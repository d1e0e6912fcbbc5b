"""A push from a batch too large to carry artifact states (``partial``) still
brings the artifacts onto an open run page: the page refetches the run's state."""

import io

import pytest
from django.contrib.auth.models import Group

from runs.models import Run
from runs.services.access import bucket_grant_create
from tests.e2e.conftest import log_in, screenshot
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_partial_pushes_make_the_run_page_refetch(
    minio, live_bucket, running_consumer, live_server_daphne, browser_page, django_user_model, settings
):
    # Every batch is "too large": each push is partial. The consumer runs in
    # this process, so the override reaches it.
    settings.BROADCAST_MAX_ARTIFACTS = 0
    page, server = browser_page, live_server_daphne
    user = django_user_model.objects.create_user(username="viewer", password="viewer-pass-123")
    group = Group.objects.create(name="viewers")
    user.groups.add(group)
    bucket_grant_create(group=group, bucket=live_bucket)
    minio.put_object(live_bucket.name, "bulk-run/load/first.txt", io.BytesIO(b"1"), 1)
    run = wait_for(lambda: Run.objects.filter(bucket=live_bucket, run_key="bulk-run").first(), what="the run")

    log_in(page, server.url, "viewer", "viewer-pass-123")
    page.goto(f"{server.url}/runs/{run.pk}/")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=10_000)
    page.evaluate("window.__noReload = true")

    names = [f"part-{i}.txt" for i in range(3)]
    for name in names:
        minio.put_object(live_bucket.name, f"bulk-run/load/{name}", io.BytesIO(b"x"), 1)
    for name in names:
        page.locator("li.artifact a.name", has_text=name).wait_for(timeout=15_000)
    assert page.evaluate("window.__noReload") is True, "the page reloaded"
    screenshot(page, "partial-push-refetched")
