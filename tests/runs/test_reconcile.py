"""The reconciler against the real MinIO and PostgreSQL (runs/services/reconcile.py).

A bucket is listed and the database brought in line with it: new objects,
changed etags, deletions only for keys whose last event precedes the listing,
resume after a stop, and the newer-wins rule against real events in either order.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from runs.models import Artifact, BucketSweep, IngestError, Rendition, Run
from runs.services.reconcile import RECONCILE_ERROR_TOPIC, RECONCILED, bucket_reconcile, sweep_request
from tests.conftest import ConsumerThread, skip_to_end
from tests.helpers import put, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

V1 = "artifacts/train-pipeline-x7k2p/2026/11/29/train-pipeline-x7k2p-1234567890"
V2 = "v2/artifacts/train/0b5f1c2e-1111-4222-8333-944455556666/trainer"


@pytest.fixture
def bucket(registered_bucket):
    return registered_bucket


def _live(bucket) -> dict[str, str]:
    return dict(Artifact.objects.filter(bucket=bucket, deleted=False).values_list("key", "etag"))


def _listing(minio, bucket) -> dict[str, str]:
    return {o.object_name: o.etag.strip('"') for o in minio.list_objects(bucket.name, recursive=True)}


def test_backfill_imports_kfp_layouts_without_rendering(minio, bucket):
    keys = [
        f"{V1}/mlpipeline-ui-metadata.tgz",
        f"{V1}/roc.csv",
        f"{V1}/main.log",
        f"{V2}/model",
        f"{V2}/metrics",
    ]
    keys += [f"{V2}/{i:03d}/part.csv" for i in range(23)]
    for key in keys:
        put(minio, bucket.name, key, key.encode())

    sweep = bucket_reconcile(bucket=bucket, reason=BucketSweep.Reason.BACKFILL, lazy_render=True, page_size=7)

    assert sweep.status == BucketSweep.Status.DONE, sweep.error
    assert (sweep.listed, sweep.stored, sweep.deleted) == (len(keys), len(keys), 0)
    assert _live(bucket) == _listing(minio, bucket)
    runs = {r.run_key: r for r in Run.objects.filter(bucket=bucket)}
    assert set(runs) == {
        "artifacts/train-pipeline-x7k2p",
        "v2/artifacts/train/0b5f1c2e-1111-4222-8333-944455556666",
    }
    assert runs["artifacts/train-pipeline-x7k2p"].artifact_count == 3
    assert runs["v2/artifacts/train/0b5f1c2e-1111-4222-8333-944455556666"].artifact_count == len(keys) - 3
    assert Artifact.objects.filter(bucket=bucket, sequencer=RECONCILED).count() == len(keys)
    # Lazy: nothing is rendered until someone opens the run.
    assert not Rendition.objects.filter(artifact__bucket=bucket).exists()


def test_resweep_changes_nothing_and_records_no_new_rows(minio, bucket):
    for i in range(12):
        put(minio, bucket.name, f"run-a/step/{i}.txt", b"x")
    bucket_reconcile(bucket=bucket, page_size=5)
    before = list(
        Artifact.objects.filter(bucket=bucket).order_by("key").values_list("id", "etag", "updated_at")
    )
    seq = Run.objects.get(bucket=bucket).seq

    again = bucket_reconcile(bucket=bucket, page_size=5)

    assert (again.listed, again.stored, again.deleted) == (12, 0, 0)
    after = list(
        Artifact.objects.filter(bucket=bucket).order_by("key").values_list("id", "etag", "updated_at")
    )
    assert after == before
    assert Run.objects.get(bucket=bucket).seq == seq


def test_changed_etag_updates_and_missing_key_is_deleted(minio, bucket):
    for name in ("a.csv", "b.csv", "c.csv", "z.csv"):
        put(minio, bucket.name, f"run-b/step/{name}", b"one")
    bucket_reconcile(bucket=bucket, page_size=2)
    put(minio, bucket.name, "run-b/step/a.csv", b"two, longer")
    minio.remove_object(bucket.name, "run-b/step/b.csv")
    minio.remove_object(bucket.name, "run-b/step/z.csv")  # the last key: removed by the tail pass

    sweep = bucket_reconcile(bucket=bucket, page_size=2)

    assert (sweep.stored, sweep.deleted) == (1, 2)
    assert _live(bucket) == _listing(minio, bucket)
    gone = Artifact.objects.get(bucket=bucket, key="run-b/step/b.csv")
    assert gone.deleted and gone.sequencer == RECONCILED
    assert Run.objects.get(bucket=bucket).artifact_count == 2


def test_key_stored_after_the_listing_began_is_not_deleted(minio, bucket):
    """An upload in flight: its event was stored while the sweep ran, the listing missed it."""
    from runs.events import EventAction, ObjectEvent
    from runs.services.ingest import ingest_events

    put(minio, bucket.name, "run-c/step/listed.txt")
    calls = []

    def during_sweep(sweep):
        # After the first page: an event for a key the listing will never show.
        if not calls:
            now = timezone.now()
            event = ObjectEvent(
                bucket=bucket.name,
                key="run-c/step/zz-in-flight.txt",
                action=EventAction.CREATED,
                event_name="s3:ObjectCreated:Put",
                event_time=now,
                order=int(now.timestamp() * 1e9),
                size=1,
                etag="e" * 32,
            )
            ingest_events(events=[event])
        calls.append(sweep.cursor)

    sweep = bucket_reconcile(bucket=bucket, page_size=1, progress=during_sweep)

    assert sweep.deleted == 0
    assert not Artifact.objects.get(bucket=bucket, key="run-c/step/zz-in-flight.txt").deleted


def test_stopped_sweep_resumes_after_its_cursor(minio, bucket):
    for i in range(10):
        put(minio, bucket.name, f"run-d/step/{i:02d}.txt", str(i).encode())
    pages = []
    first = bucket_reconcile(bucket=bucket, page_size=3, should_stop=lambda: True, progress=pages.append)

    assert first.status == BucketSweep.Status.RUNNING and first.cursor == "run-d/step/02.txt"
    assert Artifact.objects.filter(bucket=bucket).count() == 3

    second = bucket_reconcile(bucket=bucket, page_size=3)

    assert second.pk == first.pk and second.started_at == first.started_at
    assert second.status == BucketSweep.Status.DONE and second.listed == 10
    assert _live(bucket) == _listing(minio, bucket)
    assert Run.objects.get(bucket=bucket).artifact_count == 10


def test_reconciler_removal_is_undone_when_the_listing_shows_the_key_again(minio, bucket):
    put(minio, bucket.name, "run-e/step/x.txt")
    bucket_reconcile(bucket=bucket)
    # As if a sweep had wrongly taken the key for deleted (an upload in flight as it listed).
    art = Artifact.objects.get(bucket=bucket, key="run-e/step/x.txt")
    Artifact.objects.filter(pk=art.pk).update(deleted=True, event_order=art.event_order + 10**12)

    bucket_reconcile(bucket=bucket)

    assert not Artifact.objects.get(pk=art.pk).deleted


def test_unresolvable_key_is_recorded_once(minio, bucket):
    put(minio, bucket.name, "top-level-file.txt")
    bucket_reconcile(bucket=bucket)
    bucket_reconcile(bucket=bucket)

    errors = IngestError.objects.filter(
        topic=RECONCILE_ERROR_TOPIC, message_key=f"{bucket.name}/top-level-file.txt".encode()
    )
    assert errors.count() == 1
    assert "matches no layout" in errors.get().error


def test_missing_bucket_fails_the_sweep_with_the_reason(minio, bucket):
    minio.delete_bucket_notification(bucket.name)
    minio.remove_bucket(bucket.name)
    try:
        sweep = bucket_reconcile(bucket=bucket)
        assert sweep.status == BucketSweep.Status.FAILED
        assert "NoSuchBucket" in sweep.error
    finally:
        minio.make_bucket(bucket.name)


def test_request_is_idempotent_while_open(bucket):
    one = sweep_request(bucket=bucket, reason=BucketSweep.Reason.MANUAL)
    two = sweep_request(bucket=bucket, reason=BucketSweep.Reason.MANUAL)
    assert one.pk == two.pk and one.status == BucketSweep.Status.REQUESTED


@pytest.mark.parametrize("listing_first", [False, True], ids=["event-first", "listing-first"])
def test_event_and_listing_in_either_order_keep_the_newest_etag(
    minio, live_bucket, unique_name, listing_first
):
    group = unique_name("rec-group")
    skip_to_end(group_id=group, topic=live_bucket.topic.name)
    key = "run-f/step/model.bin"
    put(minio, live_bucket.name, key, b"version one")
    newest = put(minio, live_bucket.name, key, b"version two").etag.strip('"')

    if listing_first:
        bucket_reconcile(bucket=live_bucket)
        assert _live(live_bucket) == {key: newest}
    consumer = ConsumerThread(group).start()
    try:
        # Both real events (v1, then v2) are consumed after (or without) the listing.
        wait_for(
            lambda: (
                Artifact.objects.filter(bucket=live_bucket, key=key).exclude(sequencer=RECONCILED).exists()
            ),
            what="the real v2 event stored",
        )
    finally:
        consumer.stop()
    if not listing_first:
        sweep = bucket_reconcile(bucket=live_bucket)
        assert sweep.stored == 0
    art = Artifact.objects.get(bucket=live_bucket, key=key)
    assert (art.etag, art.deleted) == (newest, False)
    assert Artifact.objects.filter(bucket=live_bucket).count() == 1


def test_keys_with_spaces_plus_percent_and_unicode_are_listed_exactly(minio, bucket):
    keys = [
        "my run/step one/file with spaces.txt",
        "run+plus/st+ep/a+b%20c 100%.csv",
        "lauf-ü/schritt-ß/数据 ✓.json",
        "run-x/step/<tag> & 'quote'.html",
        "run-x/step/deep/a/b/c/d.txt",
    ]
    for key in keys:
        put(minio, bucket.name, key)

    sweep = bucket_reconcile(bucket=bucket)

    assert sweep.status == BucketSweep.Status.DONE, sweep.error
    assert _live(bucket) == _listing(minio, bucket)
    assert sorted(_live(bucket)) == sorted(keys)


def test_reconcile_now_from_the_console_is_run_by_the_consumers_maintenance(
    admin_client, minio, bucket, settings
):
    from streaming.ingest.maintenance import Maintenance

    put(minio, bucket.name, "run-g/step/missed.txt")
    response = admin_client.post(f"/admin/runs/bucket/{bucket.pk}/reconcile/")
    assert response.status_code == 302
    sweep = BucketSweep.objects.get(bucket=bucket)
    assert (sweep.status, sweep.reason) == (BucketSweep.Status.REQUESTED, BucketSweep.Reason.MANUAL)

    settings.RECONCILE_ENABLED = True
    Maintenance(topics=lambda: []).tick()  # a consumer following no topic still runs requested sweeps

    sweep.refresh_from_db()
    assert (sweep.status, sweep.listed, sweep.stored) == (BucketSweep.Status.DONE, 1, 1)
    assert _live(bucket) == _listing(minio, bucket)
    page = admin_client.get(f"/admin/runs/bucket/{bucket.pk}/change/").content.decode()
    assert "Requested by staff" in page and "Reconcile now" in page


def test_maintenance_sweeps_a_followed_bucket_whole_once_per_period(minio, bucket, settings):
    from streaming.ingest.maintenance import Maintenance

    put(minio, bucket.name, "run-h/step/old.txt")
    settings.RECONCILE_ENABLED = True
    maintenance = Maintenance(topics=lambda: [bucket.topic.name])

    maintenance.tick()  # first start on a bucket that already holds objects: imported
    assert _live(bucket) == _listing(minio, bucket)
    full = BucketSweep.objects.get(bucket=bucket, reason=BucketSweep.Reason.FULL)
    assert full.lazy_render and full.status == BucketSweep.Status.DONE

    put(minio, bucket.name, "run-h/step/new.txt")
    maintenance.tick()  # within the period: no second full sweep, and the recent pass already ran
    assert BucketSweep.objects.filter(bucket=bucket, reason=BucketSweep.Reason.FULL).count() == 1

    settings.RECONCILE_RECENT_INTERVAL_S = 0
    maintenance.tick()  # the run's prefix is swept again
    assert _live(bucket) == _listing(minio, bucket)
    assert BucketSweep.objects.filter(
        bucket=bucket, prefix="run-h/", reason=BucketSweep.Reason.RECENT
    ).exists()


def test_many_stored_keys_between_two_listed_ones_are_removed_page_by_page(minio, bucket):
    """The database may hold far more keys than the listing (a bucket emptied by lifecycle
    rules): they are read a page at a time, and every one of them is marked deleted."""
    from runs.events import EventAction, ObjectEvent
    from runs.services.ingest import ingest_events

    put(minio, bucket.name, "run-m/step/a-first.txt")
    put(minio, bucket.name, "run-m/step/z-last.txt")
    past = timezone.now() - timezone.timedelta(minutes=5)
    gone = [f"run-m/step/m-{i:03d}.txt" for i in range(25)]
    ingest_events(
        events=[
            ObjectEvent(
                bucket=bucket.name,
                key=key,
                action=EventAction.CREATED,
                event_name="s3:ObjectCreated:Put",
                event_time=past,
                order=int(past.timestamp() * 1e9) + i,
                size=1,
                etag="f" * 32,
            )
            for i, key in enumerate(gone)
        ]
    )

    sweep = bucket_reconcile(bucket=bucket, page_size=4)

    assert (sweep.status, sweep.listed, sweep.stored, sweep.deleted) == (BucketSweep.Status.DONE, 2, 2, 25)
    assert _live(bucket) == _listing(minio, bucket)
    assert Run.objects.get(bucket=bucket).artifact_count == 2


def test_a_failing_full_sweep_is_retried_after_a_while_not_on_every_tick(minio, bucket, settings):
    from streaming.ingest.maintenance import Maintenance

    settings.RECONCILE_ENABLED = True
    minio.delete_bucket_notification(bucket.name)
    minio.remove_bucket(bucket.name)  # the store now refuses the listing (NoSuchBucket)
    try:
        maintenance = Maintenance(topics=lambda: [bucket.topic.name])
        maintenance.tick()
        maintenance.tick()
        failed = BucketSweep.objects.filter(bucket=bucket, reason=BucketSweep.Reason.FULL)
        assert failed.count() == 1 and failed.get().status == BucketSweep.Status.FAILED

        settings.RECONCILE_RETRY_S = 0
        maintenance.tick()
        assert failed.count() == 2
    finally:
        minio.make_bucket(bucket.name)
