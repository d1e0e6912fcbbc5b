"""A page whose access ends stops being live and says why (issue 8, finding 5).

The server closes the socket (4403 when the run is no longer visible, 4401 when
the session ended); the page then asks its own URL what changed, stops
reconnecting and shows a notice: back to the runs, or log in again.
"""

import pytest
from django.contrib.auth.models import Group

from runs.models import BucketGrant
from runs.services.access import bucket_grant_create, bucket_grant_delete
from tests.e2e.conftest import log_in, screenshot
from tests.factories import BucketFactory
from tests.runs.portal_helpers import ingest, run_of

pytestmark = pytest.mark.e2e


@pytest.fixture
def watching(live_server_daphne, browser_page, django_user_model):
    """A user with a grant, logged in, on a live run page."""
    bucket = BucketFactory(name="socket-access")
    ingest(bucket, "run-1/step/a.txt")
    user = django_user_model.objects.create_user(username="viewer", password="viewer-pass-123")
    group = Group.objects.create(name="viewers")
    user.groups.add(group)
    bucket_grant_create(group=group, bucket=bucket)
    page, server = browser_page, live_server_daphne
    log_in(page, server.url, "viewer", "viewer-pass-123")
    page.goto(f"{server.url}/runs/{run_of(bucket, 'run-1').pk}/")
    page.locator('#live-status[data-state="live"]').wait_for(timeout=20_000)
    return page, user, group, bucket


def test_a_revoked_grant_stops_the_page_and_says_so(watching):
    page, _user, group, bucket = watching
    bucket_grant_delete(grant=BucketGrant.objects.get(group=group, bucket=bucket))
    notice = page.locator("#live-notice")
    notice.wait_for(timeout=15_000)
    assert "no longer have access" in notice.inner_text()
    assert page.locator("#live-status").get_attribute("data-state") == "off"
    screenshot(page, "socket-access-revoked")
    # It stays stopped: no reconnect loop.
    page.wait_for_timeout(3_000)
    assert page.locator("#live-status").get_attribute("data-state") == "off"


def test_a_deactivated_user_is_offered_to_log_in_again(watching):
    page, user, _group, _bucket = watching
    user.is_active = False
    user.save()
    notice = page.locator("#live-notice")
    notice.wait_for(timeout=15_000)
    assert "session has ended" in notice.inner_text()
    assert "/accounts/login/?next=" in notice.locator("a").get_attribute("href")
    screenshot(page, "socket-access-logged-out")
