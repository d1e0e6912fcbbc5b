"""The operations console in Chromium (issue 9 items 1 to 5): a staff user creates a topic
and a bucket, applies the bucket's notification, sends a probe and sees it succeed, grants a
group and sees the bucket's events on the health page; a member of that group then sees that
bucket's runs and no others, and reaches none of the console.

Real daphne, real Kafka and MinIO, the real ingest consumer (in this process).
The bucket publishes through MinIO's test target to the test topic: targets
are loaded when MinIO starts, and the shared MinIO is never restarted (the
target life cycle is tested on a private MinIO in tests/runs/test_console_targets.py).
Its screenshots illustrate docs/operations.md (PIPELENS_DOCS_SCREENSHOTS=1 writes them to docs/img/).
"""

import os
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.contrib.auth.models import Group
from django.db import connection

from runs.models import Bucket, KafkaTopic, Run
from runs.services.buckets import topic_ensure
from tests.conftest import ConsumerThread, skip_to_end
from tests.e2e.conftest import RESULTS, log_in
from tests.helpers import put, wait_for
from tests.runs.portal_helpers import ingest

pytestmark = pytest.mark.e2e

# PIPELENS_DOCS_SCREENSHOTS=1 refreshes docs/operations.md's images; otherwise they go with the
# other browser tests' screenshots, so a test run never changes tracked files.
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def shot(page, name: str) -> None:
    where = DOCS_IMG if os.environ.get("PIPELENS_DOCS_SCREENSHOTS") == "1" else RESULTS
    where.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(where / f"console-{name}.png"), full_page=True)


@pytest.fixture
def console_world(transactional_db, minio, kafka_bootstrap, django_user_model, unique_name):
    """Users, a bucket nobody will be granted, a consumer; clean-up of what the test makes."""
    django_user_model.objects.create_superuser("ops", password="ops-pass-123")
    member = django_user_model.objects.create_user("member", password="member-pass-123")
    member.groups.add(Group.objects.create(name="lab-team"))
    hidden = Bucket.objects.create(name=unique_name("hidden"))
    ingest(hidden, "hidden-run/train/a.txt")
    topic_ensure(name=settings.MINIO_KAFKA_TOPIC)
    group = unique_name("e2e-console")
    skip_to_end(group_id=group, topic=settings.MINIO_KAFKA_TOPIC)
    consumer = ConsumerThread(group).start()
    made = {"bucket": f"console-e2e-{uuid.uuid4().hex[:8]}", "topic": unique_name("console-e2e")}
    try:
        yield made
    finally:
        consumer.stop()
        if minio.bucket_exists(made["bucket"]):
            minio.delete_bucket_notification(made["bucket"])
            for obj in minio.list_objects(made["bucket"], recursive=True):
                minio.remove_object(made["bucket"], obj.object_name)
            minio.remove_bucket(made["bucket"])
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        if made["topic"] in admin.list_topics(timeout=10).topics:
            admin.delete_topics([made["topic"]])[made["topic"]].result(20)
        _wait_other_sessions_gone()


def _wait_other_sessions_gone() -> None:
    """PostgreSQL notices the consumer's closed sessions a moment later; wait for that, so the
    test database can be dropped at the end of the session."""
    from django.db import connection

    query = (
        "SELECT application_name, state, left(query, 200) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def others():
        with connection.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()

    try:
        wait_for(lambda: not others(), timeout=10, what="the consumer's database sessions to end")
    except BaseException:
        print("still connected:", others())
        raise


def test_staff_wire_a_bucket_and_grant_it_and_the_member_sees_only_that(
    console_world, live_server_daphne, browser_page, minio
):
    page, url = browser_page, live_server_daphne.url
    bucket_name, topic_name = console_world["bucket"], console_world["topic"]
    log_in(page, url, "ops", "ops-pass-123")

    # 1. A topic, created on the broker with the partitions asked for.
    page.goto(url + "/admin/runs/kafkatopic/add/")
    page.fill("#id_name", topic_name)
    page.fill("#id_partitions", "3")
    page.fill("#id_retention_ms", "86400000")
    page.click("input[name=_continue]")
    page.wait_for_selector("#topic-partitions")
    assert page.locator("#topic-partitions tbody tr").count() == 3
    shot(page, "topic")

    # 2. A bucket on the test topic: created in MinIO with its notification.
    page.goto(url + "/admin/runs/bucket/add/")
    page.fill("#id_name", bucket_name)
    page.select_option("#id_topic", label=settings.MINIO_KAFKA_TOPIC)
    page.fill("#id_prefix_filter", "")
    page.click("input[name=_continue]")
    page.wait_for_selector("#bucket-notification")
    assert page.get_attribute("#bucket-notification", "data-in-sync") == "yes"
    assert KafkaTopic.objects.filter(name=topic_name).exists()
    # 3. Apply it again from the bucket's page (one action).
    page.click("#reapply-notification")
    page.wait_for_selector("text=Notification of " + bucket_name + " applied.")
    shot(page, "bucket")
    # 3b. Send a probe: the page follows it until its event came back, hop by hop.
    page.click("#send-probe")
    page.wait_for_selector("#bucket-probes tr.probe[data-status=succeeded]", timeout=20_000)
    assert page.locator("#bucket-probes tr.probe").count() == 1
    assert page.inner_text("#bucket-probes tr.probe .probe-total").endswith(" ms")
    page.locator("#bucket-probes").scroll_into_view_if_needed()
    shot(page, "probe")

    put(minio, bucket_name, "exp-1/train/metrics.csv", b"a,b\n1,2\n")
    wait_for(lambda: Run.objects.filter(bucket__name=bucket_name).exists(), timeout=30, what="the run")
    # Between Playwright calls the ORM runs in another context than the fixtures' (asgiref
    # locals follow Playwright's greenlet): close that connection, or it outlives the test.
    connection.close()

    # 4. Grant the group, after a preview of what it would show.
    page.goto(url + "/admin/runs/bucketgrant/add/")
    page.select_option("#id_group", label="lab-team")
    page.select_option("#id_bucket", label=bucket_name)
    page.click("#grant-preview-button")
    page.wait_for_selector(".grant-preview-count")
    assert page.inner_text(".grant-preview-count") == "1"
    assert "exp-1" in page.inner_text(".grant-preview-runs")
    shot(page, "grant-preview")
    page.click("input[name=_save]")
    page.wait_for_selector("text=was added successfully")
    page.goto(url + "/admin/runs/bucket/targets/")
    shot(page, "targets")

    # 5. The health page, from the admin's index: the bucket's event and the alive consumer.
    page.goto(url + "/admin/")
    page.click("#content-main a[href$='/admin/runs/consumerheartbeat/']")
    row = f"#health-buckets tr[data-bucket='{bucket_name}'] .events-hour"

    def bucket_event_counted():
        page.reload()
        return page.inner_text(row) == "1"

    wait_for(bucket_event_counted, timeout=30, interval=0.5, what="the bucket's event on the health page")
    assert page.locator("#health-consumers .health-alive").count() >= 1
    shot(page, "health")
    page.click("#logout-form button")

    # 6. The member sees that bucket's run, not the other bucket's.
    log_in(page, url, "member", "member-pass-123")
    wait_for(lambda: "exp-1" in page.content(), what="the granted run in the runs list")
    assert "hidden-run" not in page.content()
    # …and reaches none of the console.
    for path in (
        "/admin/",
        "/admin/runs/bucket/",
        "/admin/runs/bucket/targets/",
        "/admin/runs/bucketgrant/add/",
        "/admin/runs/consumerheartbeat/",
    ):
        page.goto(url + path)
        assert page.url.startswith(url + "/admin/login/"), page.url
        assert "not authorized to access this page" in page.content()
