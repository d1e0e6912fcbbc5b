"""Bucket probes on the real services (runs/services/bucket_probes.py; docs/operations.md#probe).

A probe's object goes into MinIO or SeaweedFS, its event through Kafka into the
consumer (a thread of this process), the database and the channel layer (Redis);
the probe reports each hop, then its object is removed. Neither the probe nor
its delete event, nor a probe object left behind and found by the reconciler,
ever becomes a run, an artifact or an IngestError.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from minio.error import S3Error

from runs.events import PROBE_SEGMENT, is_probe_key
from runs.models import Artifact, Bucket, BucketSweep, IngestError, Probe, Run
from runs.services.bucket_probes import PROBES_KEPT, probe_key, probe_refresh, probe_send
from runs.services.buckets import bucket_create
from runs.services.reconcile import bucket_reconcile
from tests.helpers import put, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _settled(probe: Probe) -> Probe:
    wait_for(
        lambda: probe_refresh(probe=probe).status != Probe.Status.PENDING,
        timeout=20,
        interval=0.05,
        what="the probe to settle",
    )
    return probe


def _nothing_made_of_probes(bucket) -> None:
    assert not Run.objects.filter(bucket=bucket).exclude(run_key__startswith="after").exists()
    assert not [a.key for a in Artifact.objects.filter(bucket=bucket) if is_probe_key(a.key)]
    assert not IngestError.objects.filter(error__contains=PROBE_SEGMENT).exists()


def _assert_succeeded_with_hops(probe: Probe, store, bucket) -> None:
    assert probe.status == Probe.Status.SUCCEEDED, probe.error
    hops = probe.hops_ms()
    assert all(hops[h] is not None for h in ("put_to_topic", "topic_to_stored", "stored_to_pushed", "total"))
    assert probe.put_at <= probe.stored_at <= probe.pushed_at
    assert probe.event_topic == bucket.topic.name
    assert probe.removed_at is not None
    with pytest.raises(S3Error):
        store.stat_object(bucket.name, probe.key)


def _after_the_delete(store, bucket) -> None:
    """Wait for an ordinary object put after the probe's delete: the delete event went first."""
    put(store, bucket.name, "after/train/done.txt", b"x")
    wait_for(lambda: Run.objects.filter(bucket=bucket, run_key__startswith="after").exists(), what="the run")


def test_a_probe_reports_its_hop_times_through_minio(minio, live_bucket, running_consumer):
    probe = _settled(probe_send(bucket=live_bucket))

    _assert_succeeded_with_hops(probe, minio, live_bucket)
    _after_the_delete(minio, live_bucket)
    _nothing_made_of_probes(live_bucket)


def test_a_probe_proves_the_filers_notification_on_seaweedfs(seaweedfs, seaweed_bucket, seaweed_consumer):
    probe = _settled(probe_send(bucket=seaweed_bucket))

    _assert_succeeded_with_hops(probe, seaweedfs, seaweed_bucket)
    _after_the_delete(seaweedfs, seaweed_bucket)
    _nothing_made_of_probes(seaweed_bucket)


def test_a_probe_goes_inside_the_buckets_prefix_filter(minio, unique_name, live_bucket, running_consumer):
    bucket = bucket_create(
        name=unique_name("pf"),
        store="default",
        topic=live_bucket.topic,
        layouts=live_bucket.layouts,
        prefix_filter="exp",
        suffix_filter=".csv",
    )
    try:
        assert probe_key(bucket=bucket).startswith(f"exp/{PROBE_SEGMENT}/")
        assert probe_key(bucket=bucket).endswith(".csv")
        probe = _settled(probe_send(bucket=bucket))
        assert probe.status == Probe.Status.SUCCEEDED, probe.error
    finally:
        minio.delete_bucket_notification(bucket.name)
        for obj in minio.list_objects(bucket.name, recursive=True):
            minio.remove_object(bucket.name, obj.object_name)
        minio.remove_bucket(bucket.name)


def test_without_a_consumer_the_probe_fails_naming_the_missing_hops(minio, live_bucket):
    probe = probe_send(bucket=live_bucket)
    assert probe.status == Probe.Status.PENDING and probe.put_at is not None

    probe = probe_refresh(probe=probe, now=probe.put_at + timedelta(seconds=11))

    assert probe.status == Probe.Status.FAILED
    assert "no event came back" in probe.error and "topic → stored missing" in probe.error
    assert "consume_events" in probe.error
    assert probe.removed_at is not None
    with pytest.raises(S3Error):
        minio.stat_object(live_bucket.name, probe.key)


def test_a_put_the_store_refuses_fails_at_once(unique_name):
    gone = Bucket.objects.create(name=unique_name("gone"))  # registered, never created in the store

    probe = probe_send(bucket=gone)

    assert probe.status == Probe.Status.FAILED
    assert probe.error.startswith("put failed: object store 'default' refused: NoSuchBucket"), probe.error
    assert probe.put_at is None and probe.removed_at is not None


def test_a_sweep_of_a_bucket_holding_probe_objects_makes_nothing_of_them(minio, live_bucket):
    put(minio, live_bucket.name, f"{PROBE_SEGMENT}/left-behind.txt", b"probe")
    put(minio, live_bucket.name, f"exp/{PROBE_SEGMENT}/left-behind.csv", b"probe")
    put(minio, live_bucket.name, "run-1/train/a.txt", b"real")

    sweep = bucket_reconcile(bucket=live_bucket, page_size=2)

    assert sweep.status == BucketSweep.Status.DONE, sweep.error
    assert sweep.listed == 3 and sweep.stored == 1 and sweep.rejected == 0
    keys = list(Artifact.objects.filter(bucket=live_bucket).values_list("key", flat=True))
    assert keys == ["run-1/train/a.txt"]
    assert list(Run.objects.filter(bucket=live_bucket).values_list("run_key", flat=True)) == ["run-1"]
    assert not IngestError.objects.filter(error__contains=PROBE_SEGMENT).exists()


def test_the_console_sends_a_probe_and_shows_why_it_failed(
    admin_client, client, unique_name, django_user_model
):
    gone = Bucket.objects.create(name=unique_name("gone"))

    response = admin_client.post(f"/admin/runs/bucket/{gone.pk}/probe/", follow=True)

    page = response.content.decode()
    assert "Probe failed: put failed: object store &#x27;default&#x27; refused: NoSuchBucket" in page
    table = admin_client.get(f"/admin/runs/bucket/{gone.pk}/probes/").content.decode()
    assert 'data-status="failed"' in table and 'data-pending="no"' in table
    # Not staff: no probe, no table.
    client.force_login(django_user_model.objects.create_user("plain", password="plain-pass-123"))
    for response in (
        client.post(f"/admin/runs/bucket/{gone.pk}/probe/"),
        client.get(f"/admin/runs/bucket/{gone.pk}/probes/"),
    ):
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Probe.objects.filter(bucket=gone).count() == 1


def test_only_the_latest_settled_probes_are_kept(unique_name):
    gone = Bucket.objects.create(name=unique_name("gone"))
    for _ in range(PROBES_KEPT + 3):
        probe_send(bucket=gone)  # each fails at the put, settled at once

    assert Probe.objects.filter(bucket=gone).count() == PROBES_KEPT + 1  # the latest one is kept too
