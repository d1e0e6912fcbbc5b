"""The console's health page (issue 9 item 5; docs/operations.md#health).

Real MinIO, Kafka, PostgreSQL and Redis; the ingest consumer runs in this
process (``running_consumer``), with its maintenance thread writing the
heartbeat and retrying what staff asked for.
"""

import os
import uuid
from datetime import timedelta

import pytest
import redis
from django.conf import settings as django_settings
from django.db.models import Sum
from django.utils import timezone

from runs.events import RejectedMessage
from runs.models import Artifact, Bucket, BucketMinute, BucketSweep, ConsumerHeartbeat, IngestError, Rendition
from runs.services.buckets import bucket_register
from runs.services.health import consumer_heartbeat, health_prune
from runs.services.ingest import ingest_events
from runs.services.reconcile import RECONCILE_ERROR_TOPIC
from tests.helpers import put, wait_for
from tests.runs.portal_helpers import ingest

PAGE = "/admin/runs/consumerheartbeat/"
ERRORS = "/admin/runs/consumerheartbeat/errors/"


@pytest.fixture
def fast_health(settings):
    settings.HEALTH_HEARTBEAT_S = 0.2
    settings.INGEST_RETRY_POLL_S = 0.2
    return settings


def _row(page: str, attr: str, value: str) -> str:
    return page.split(f'{attr}="{value}"', 1)[1].split("</tr>", 1)[0]


@pytest.mark.django_db(transaction=True)
def test_the_page_shows_a_buckets_events_and_the_alive_consumer_with_its_lag(
    admin_client, minio, live_bucket, fast_health, running_consumer
):
    for i in range(3):
        put(minio, live_bucket.name, f"health-run/train/file-{i}.txt")
    wait_for(
        lambda: BucketMinute.objects.filter(bucket=live_bucket).aggregate(n=Sum("events"))["n"] == 3,
        what="three events counted in the bucket's minute",
    )
    topic = django_settings.MINIO_KAFKA_TOPIC
    beat = wait_for(
        lambda: ConsumerHeartbeat.objects.filter(
            pid=os.getpid(), group=running_consumer.group_id, lag__has_key=topic
        ).first(),
        what="the consumer's heartbeat with its lag",
    )
    assert topic in beat.topics
    page = admin_client.get(PAGE).content.decode()
    bucket_row = _row(page, "data-bucket", live_bucket.name)
    assert '<td class="events-hour">3</td>' in bucket_row and "<polyline points=" in bucket_row
    consumer_row = _row(page, "data-pid", str(os.getpid()))
    assert "alive" in consumer_row and running_consumer.group_id in consumer_row
    assert '<td class="lag">' in _row(page, "data-topic", topic)
    assert "Health" in admin_client.get("/admin/").content.decode()  # the sidebar/index link


@pytest.mark.django_db(transaction=True)
def test_retry_ingests_a_message_whose_bucket_is_registered_afterwards(
    admin_client, minio, live_bucket, fast_health, running_consumer
):
    # The store keeps publishing, but Pipelens forgot the bucket (its row only).
    Bucket.objects.filter(pk=live_bucket.pk).delete()
    put(minio, live_bucket.name, "late-run/train/model.bin")
    error = wait_for(
        lambda: IngestError.objects.filter(error__contains="is not registered", raw__isnull=False).first(),
        what="the unregistered bucket's event to become an ingest error",
    )
    page = admin_client.get(PAGE).content.decode()
    assert "is not registered" in _row(page, "data-topic", error.topic)

    bucket = bucket_register(name=live_bucket.name)
    response = admin_client.post(ERRORS, {"topic": error.topic, "error": [error.pk], "action": "retry"})
    assert response.status_code == 302
    wait_for(lambda: not IngestError.objects.filter(pk=error.pk).exists(), what="the retried error to go")
    assert Artifact.objects.filter(bucket=bucket, key="late-run/train/model.bin").exists()


@pytest.mark.django_db(transaction=True)
def test_a_retry_that_still_fails_keeps_the_error_with_the_new_reason(
    admin_client, live_bucket, fast_health, running_consumer
):
    ingest_events(events=[], rejected=[RejectedMessage("some-topic", 0, 7, b"k", b"{not json", "old reason")])
    error = IngestError.objects.get(topic="some-topic")
    admin_client.post(ERRORS, {"topic": "some-topic", "error": [error.pk], "action": "retry"})
    wait_for(
        lambda: IngestError.objects.filter(pk=error.pk, retry_requested_at__isnull=True).exclude(
            error="old reason"
        ),
        what="the retry to record the new reason",
    )
    assert IngestError.objects.filter(topic="some-topic").count() == 1


@pytest.mark.django_db
def test_discard_deletes_the_ticked_errors_only(admin_client):
    ingest_events(
        events=[],
        rejected=[RejectedMessage("t-a", 0, i, None, b"x", f"bad {i}") for i in range(3)],
    )
    first, *rest = IngestError.objects.order_by("offset")
    admin_client.post(ERRORS, {"topic": "t-a", "error": [first.pk], "action": "discard"})
    assert sorted(IngestError.objects.values_list("offset", flat=True)) == [1, 2]
    admin_client.post(ERRORS, {"topic": "t-a", "scope": "topic", "action": "discard"})
    assert not IngestError.objects.exists()


@pytest.mark.django_db
def test_retrying_a_reconciler_error_requests_a_sweep_of_its_bucket(admin_client):
    bucket = Bucket.objects.create(name="swept")
    ingest_events(
        events=[],
        rejected=[RejectedMessage(RECONCILE_ERROR_TOPIC, -1, -1, b"swept/odd key", None, "no layout")],
    )
    error = IngestError.objects.get()
    admin_client.post(ERRORS, {"topic": RECONCILE_ERROR_TOPIC, "error": [error.pk], "action": "retry"})
    assert not IngestError.objects.exists()
    assert BucketSweep.objects.filter(bucket=bucket, status=BucketSweep.Status.REQUESTED).exists()


@pytest.mark.django_db
def test_a_consumer_silent_for_longer_than_the_alive_window_is_stale_then_pruned(admin_client):
    long_ago = timezone.now() - timedelta(seconds=django_settings.HEALTH_ALIVE_S + 5)
    consumer_heartbeat(
        hostname="gone-host",
        pid=4242,
        group="g",
        started_at=long_ago,
        topics=["t"],
        lag={"t": 5},
        now=long_ago,
    )
    consumer_heartbeat(
        hostname="live-host", pid=4243, group="g", started_at=long_ago, topics=["t"], lag={"t": 2}
    )
    page = admin_client.get(PAGE).content.decode()
    assert "stale" in _row(page, "data-host", "gone-host") and "alive" in _row(page, "data-host", "live-host")
    # Only the alive process's lag counts for the topic.
    assert '<td class="lag">2</td>' in _row(page, "data-topic", "t")
    health_prune(now=long_ago + timedelta(seconds=django_settings.HEALTH_KEEP_S + 1))
    assert list(ConsumerHeartbeat.objects.values_list("hostname", flat=True)) == ["live-host"]


@pytest.mark.django_db
def test_render_queue_depth_and_failures_per_viewer(admin_client, settings):
    settings.RENDER_QUEUE = f"health-render-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.lpush(settings.RENDER_QUEUE, "a", "b")
        client.lpush(f"{settings.RENDER_QUEUE}\x06\x163", "c")  # a priority step's list
        bucket = Bucket.objects.create(name="rendered")
        ingest(bucket, "r/s/a.csv", "r/s/b.csv")
        for artifact in Artifact.objects.all():
            Rendition.objects.create(artifact=artifact, etag="e", viewer="table", status="failed")
        page = admin_client.get(PAGE).content.decode()
    finally:
        client.delete(settings.RENDER_QUEUE, f"{settings.RENDER_QUEUE}\x06\x163")
    assert "<td>3</td>" in _row(page, "data-queue", settings.RENDER_QUEUE)
    assert 'data-viewer="table">table 2<' in page


@pytest.mark.django_db
def test_an_unreachable_redis_is_said_and_the_page_still_answers(admin_client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/1"  # discard port: nothing listens
    response = admin_client.get(PAGE)
    assert response.status_code == 200 and "Redis did not answer" in response.content.decode()


@pytest.mark.django_db
def test_non_staff_users_reach_neither_the_page_nor_the_actions(client, django_user_model):
    ingest_events(events=[], rejected=[RejectedMessage("t-a", 0, 1, None, b"x", "bad")])
    django_user_model.objects.create_user("member", password="pw")
    client.force_login(django_user_model.objects.get(username="member"))
    response = client.get(PAGE)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.post(ERRORS, {"topic": "t-a", "scope": "topic", "action": "discard"})
    assert IngestError.objects.count() == 1


@pytest.mark.django_db
def test_minute_counters_add_up_per_bucket_and_minute_and_ignore_unknown_buckets():
    from runs.services.health import bucket_minutes_add

    bucket = Bucket.objects.create(name="counted")
    at = timezone.now().replace(second=10)
    bucket_minutes_add(counts={"counted": 2, "not-registered": 5}, at=at)
    bucket_minutes_add(counts={"counted": 3}, at=at.replace(second=50))
    bucket_minutes_add(counts={"counted": 1}, at=at + timedelta(minutes=1))
    assert list(
        BucketMinute.objects.filter(bucket=bucket).order_by("minute").values_list("events", flat=True)
    ) == [
        5,
        1,
    ]
    assert BucketMinute.objects.count() == 2
