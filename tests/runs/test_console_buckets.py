"""Operations console, buckets (issue 9 item 2): registering a bucket in the admin creates it in
the real MinIO and applies its notification; drift is shown and re-applied (docs/operations.md)."""

import json
import os
import uuid

import pytest
from confluent_kafka import Consumer
from django.conf import settings
from minio.notificationconfig import NotificationConfig, PrefixFilterRule, QueueConfig

from runs.models import Bucket, default_layouts
from runs.services.buckets import topic_ensure
from streaming.ingest.kafka_config import consumer_config
from tests.conftest import skip_to_end
from tests.helpers import put, wait_for

pytestmark = pytest.mark.django_db

# deploy/local/minio.sh's benchmark target (MINIO_BENCH_NOTIFY_ARN in services.sh env).
BENCH_ARN = os.environ.get("MINIO_BENCH_NOTIFY_ARN", "arn:minio:sqs::PIPELENSBENCH:kafka")


def _form(name, topic, **overrides):
    data = {
        "name": name,
        "store": "default",
        "topic": str(topic.pk),
        "notify_arn": "",
        "layouts": json.dumps(default_layouts()),
        "prefix_filter": "",
        "suffix_filter": "",
        "event_names": "[]",
    }
    data.update(overrides)
    return data


@pytest.fixture
def store_buckets(minio, kafka_bootstrap):
    """Unique bucket names for one test; each that exists in MinIO at the end is emptied and removed."""
    names = []

    def new():
        names.append(f"console-{uuid.uuid4().hex[:12]}")
        return names[-1]

    yield new
    for name in names:
        if minio.bucket_exists(name):
            minio.delete_bucket_notification(name)
            for obj in minio.list_objects(name, recursive=True):
                minio.remove_object(name, obj.object_name)
            minio.remove_bucket(name)


@pytest.fixture
def test_topic(kafka_bootstrap):
    return topic_ensure(name=settings.MINIO_KAFKA_TOPIC)


def _first_key_of(consumer, bucket: str) -> str:
    def got():
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            return None
        key = json.loads(msg.value()).get("Key", "")
        return key if key.startswith(bucket + "/") else None

    return wait_for(got, timeout=30, what=f"an event of bucket {bucket}")


def test_registering_a_bucket_applies_its_notification_and_an_upload_arrives(
    admin_client, minio, store_buckets, test_topic, unique_name
):
    name = store_buckets()
    response = admin_client.post(
        "/admin/runs/bucket/add/", _form(name, test_topic, prefix_filter="runs/", suffix_filter=".csv")
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    bucket = Bucket.objects.get(name=name)
    assert bucket.notification_status == Bucket.NotificationStatus.CONFIGURED
    (rule,) = minio.get_bucket_notification(name).queue_config_list
    assert rule.queue == settings.MINIO_NOTIFY_ARN
    assert sorted(rule.events) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert (rule.prefix_filter_rule.value, rule.suffix_filter_rule.value) == ("runs/", ".csv")
    page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/change/").content.decode()
    assert 'data-in-sync="yes"' in page

    group = unique_name("console-group")
    skip_to_end(group_id=group, topic=settings.MINIO_KAFKA_TOPIC)
    consumer = Consumer(consumer_config(group_id=group))
    try:
        consumer.subscribe([settings.MINIO_KAFKA_TOPIC])
        put(minio, name, "elsewhere/a.csv")  # outside the prefix: no event
        put(minio, name, "runs/r1/train/metrics.csv")
        assert _first_key_of(consumer, name) == f"{name}/runs/r1/train/metrics.csv"
    finally:
        consumer.close()


def test_a_change_behind_pipelens_back_shows_as_drift_and_reapply_fixes_it(
    admin_client, minio, store_buckets, test_topic
):
    name = store_buckets()
    admin_client.post("/admin/runs/bucket/add/", _form(name, test_topic, prefix_filter="runs/"))
    bucket = Bucket.objects.get(name=name)
    # Someone edits the bucket's notification in the store directly.
    minio.set_bucket_notification(
        name,
        NotificationConfig(
            queue_config_list=[
                QueueConfig(
                    queue=settings.MINIO_NOTIFY_ARN,
                    events=["s3:ObjectCreated:Put"],
                    config_id="pipelens",
                    prefix_filter_rule=PrefixFilterRule("other/"),
                )
            ]
        ),
    )
    page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/change/").content.decode()
    assert 'data-in-sync="no"' in page
    assert (
        "events: Pipelens expects s3:ObjectCreated:*, s3:ObjectRemoved:*, the store has s3:ObjectCreated:Put"
        in page
    )
    assert "prefix filter: Pipelens expects runs/, the store has other/" in page

    response = admin_client.post(f"/admin/runs/bucket/{bucket.pk}/reapply/")
    assert response.status_code == 302
    (rule,) = minio.get_bucket_notification(name).queue_config_list
    assert sorted(rule.events) == ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"]
    assert rule.prefix_filter_rule.value == "runs/"
    page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/change/").content.decode()
    assert 'data-in-sync="yes"' in page

    minio.delete_bucket_notification(name)
    page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/change/").content.decode()
    assert f"the store has no rule sending to {settings.MINIO_NOTIFY_ARN}" in page


def test_wrong_object_store_credentials_are_named_and_nothing_is_made(
    admin_client, minio, store_buckets, test_topic, settings
):
    alias = f"wrongcreds{uuid.uuid4().hex[:6]}"  # a fresh alias: clients are cached per alias
    settings.OBJECT_STORES = {
        **settings.OBJECT_STORES,
        alias: {**settings.OBJECT_STORES["default"], "secret_key": "not-the-secret"},
    }
    name = store_buckets()
    response = admin_client.post("/admin/runs/bucket/add/", _form(name, test_topic, store=alias))
    assert response.status_code == 200
    page = response.content.decode()
    assert f"object store {alias!r}" in page.replace("&#x27;", "'") and "SignatureDoesNotMatch" in page
    assert "not-the-secret" not in page
    assert not Bucket.objects.exists() and not minio.bucket_exists(name)


def test_a_bucket_name_the_store_refuses_is_shown(admin_client, minio, test_topic):
    # MinIO reserves "minio" for itself (AllAccessDisabled); the client library lets it through.
    response = admin_client.post("/admin/runs/bucket/add/", _form("minio", test_topic))
    assert response.status_code == 200
    assert "AllAccessDisabled" in response.content.decode()
    assert not Bucket.objects.exists()


@pytest.mark.parametrize("prefix", ["runs/../secret", "runs\\x", "r" * 1100])
def test_a_prefix_filter_minio_refuses_is_refused_and_nothing_is_made(
    admin_client, minio, store_buckets, test_topic, prefix
):
    name = store_buckets()
    response = admin_client.post("/admin/runs/bucket/add/", _form(name, test_topic, prefix_filter=prefix))
    assert response.status_code == 200
    page = response.content.decode()
    assert "which MinIO refuses" in page or "at most 1024 characters" in page
    assert not Bucket.objects.exists() and not minio.bucket_exists(name)


def test_an_event_name_the_store_refuses_leaves_no_bucket_behind(
    admin_client, minio, store_buckets, test_topic
):
    name = store_buckets()
    response = admin_client.post(
        "/admin/runs/bucket/add/", _form(name, test_topic, event_names='["s3:ObjectExploded:*"]')
    )
    assert response.status_code == 200
    assert "refused" in response.content.decode()
    # The bucket this request made is removed again: nothing is half-applied.
    assert not Bucket.objects.exists() and not minio.bucket_exists(name)


def test_a_target_that_publishes_to_another_topic_is_refused(
    admin_client, minio, store_buckets, kafka_bootstrap
):
    other = topic_ensure(name=f"console-{uuid.uuid4().hex[:8]}")  # a row only: no target publishes to it
    name = store_buckets()
    response = admin_client.post("/admin/runs/bucket/add/", _form(name, other))
    assert response.status_code == 200
    assert (
        f"publishes to topic {settings.MINIO_KAFKA_TOPIC!r}".replace("'", "&#x27;")
        in response.content.decode()
    )
    assert not minio.bucket_exists(name)


def test_the_targets_page_shows_which_topic_each_target_publishes_to(admin_client, minio):
    page = admin_client.get("/admin/runs/bucket/targets/").content.decode()
    arn_id = settings.MINIO_NOTIFY_ARN.split(":")[4]
    assert f'<tr data-target="{arn_id}">' in page
    row = page.split(f'<tr data-target="{arn_id}">', 1)[1].split("</tr>", 1)[0]
    assert f'<td class="topic">{settings.MINIO_KAFKA_TOPIC}</td>' in row and "environment" in row
    assert settings.OBJECT_STORES["default"]["secret_key"] not in page


def test_a_bucket_without_a_topic_takes_its_targets_topic(admin_client, minio, store_buckets, test_topic):
    name = store_buckets()
    data = _form(name, test_topic)
    data["topic"] = ""
    response = admin_client.post("/admin/runs/bucket/add/", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert Bucket.objects.get(name=name).topic.name == settings.MINIO_KAFKA_TOPIC


def test_a_seaweedfs_bucket_is_put_on_the_filers_topic_and_its_page_says_how_the_filer_is_wired(
    admin_client, seaweedfs, unique_name, test_topic
):
    name = unique_name("sw")
    try:
        refused = admin_client.post("/admin/runs/bucket/add/", _form(name, test_topic, store="seaweedfs"))
        assert "come from the filer&#x27;s topic" in refused.content.decode()
        assert not seaweedfs.bucket_exists(name)
        data = _form(name, test_topic, store="seaweedfs")
        data["topic"] = ""
        response = admin_client.post("/admin/runs/bucket/add/", data)
        assert response.status_code == 302, response.content.decode()[-3000:]
        bucket = Bucket.objects.get(name=name)
        assert bucket.notification_status == Bucket.NotificationStatus.IN_FILER_CONFIG
        assert (bucket.topic.name, bucket.topic.message_format) == (
            settings.SEAWEEDFS_KAFKA_TOPIC,
            "seaweedfs_filer",
        )
        page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/change/").content.decode()
        assert "notification.toml" in page and "it exists on the broker" in page
    finally:
        if seaweedfs.bucket_exists(name):
            seaweedfs.remove_bucket(name)


@pytest.mark.parametrize(
    ("name", "reason"), [("ab..cd", "invalid successive characters"), ("192.168.1.1", "IP address")]
)
def test_a_bucket_name_s3_forbids_is_refused_with_the_reason(admin_client, minio, test_topic, name, reason):
    response = admin_client.post("/admin/runs/bucket/add/", _form(name, test_topic))
    assert response.status_code == 200 and reason in response.content.decode()
    assert not Bucket.objects.exists()


def test_other_targets_rules_are_kept_and_deleting_the_row_withdraws_only_pipelens_rule(
    admin_client, minio, store_buckets, test_topic
):
    name = store_buckets()
    minio.make_bucket(name)
    # Another system's rule, already on the bucket (the bench target; nothing is uploaded).
    theirs = QueueConfig(
        queue=BENCH_ARN,
        events=["s3:ObjectCreated:Put"],
        config_id="theirs",
        prefix_filter_rule=PrefixFilterRule("other/"),
    )
    minio.set_bucket_notification(name, NotificationConfig(queue_config_list=[theirs]))
    assert (
        admin_client.post(
            "/admin/runs/bucket/add/", _form(name, test_topic, prefix_filter="runs/")
        ).status_code
        == 302
    )
    held = {q.config_id: q for q in minio.get_bucket_notification(name).queue_config_list}
    assert set(held) == {"theirs", "pipelens"} and held["theirs"].prefix_filter_rule.value == "other/"
    bucket = Bucket.objects.get(name=name)
    page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/delete/").content.decode()
    assert "The bucket, its objects and other" in page
    admin_client.post(f"/admin/runs/bucket/{bucket.pk}/delete/", {"post": "yes"})
    assert not Bucket.objects.filter(name=name).exists() and minio.bucket_exists(name)
    assert [q.config_id for q in minio.get_bucket_notification(name).queue_config_list] == ["theirs"]


def test_renaming_a_quiet_bucket_moves_the_rule_to_the_new_name(
    admin_client, minio, store_buckets, test_topic
):
    old, new = store_buckets(), store_buckets()
    admin_client.post("/admin/runs/bucket/add/", _form(old, test_topic))
    bucket = Bucket.objects.get(name=old)
    response = admin_client.post(f"/admin/runs/bucket/{bucket.pk}/change/", _form(new, test_topic))
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert Bucket.objects.get(pk=bucket.pk).name == new
    assert [q.config_id for q in minio.get_bucket_notification(new).queue_config_list] == ["pipelens"]
    assert minio.get_bucket_notification(old).queue_config_list == []
