"""Admin reach (issue 8, finding 9): buckets name a configured store, never an address, and a
bucket's name is fixed once events exist."""

import pytest
from django.core.exceptions import ValidationError

from runs.models import Bucket
from runs.storage import UnknownStore, minio_client
from tests.runs.portal_helpers import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_superuser("root", password="pw"))
    return client


def test_a_typed_address_is_refused_by_the_model_and_the_client():
    bucket = Bucket(name="b", store="attacker.example:9000")
    with pytest.raises(ValidationError, match="not a configured object store"):
        bucket.full_clean()
    with pytest.raises(UnknownStore):
        minio_client("attacker.example:9000")


def test_the_admin_offers_configured_stores_only(staff_client, settings):
    settings.OBJECT_STORES = {**settings.OBJECT_STORES, "archive": {**settings.OBJECT_STORES["default"]}}
    page = staff_client.get("/admin/runs/bucket/add/").content.decode()
    assert '<option value="archive">' in page and '<option value="default"' in page
    response = staff_client.post(
        "/admin/runs/bucket/add/",
        {
            "name": "new-bucket",
            "store": "evil.example:443",
            "layouts": '["generic"]',
            "event_names": "[]",
            "notification_status": "unknown",
        },
    )
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not Bucket.objects.filter(name="new-bucket").exists()


def test_the_bucket_name_is_read_only_once_events_exist(staff_client):
    quiet = Bucket.objects.create(name="quiet")
    busy = Bucket.objects.create(name="busy")
    ingest(busy, "run/step/a.txt")
    assert 'name="name"' in staff_client.get(f"/admin/runs/bucket/{quiet.pk}/change/").content.decode()
    page = staff_client.get(f"/admin/runs/bucket/{busy.pk}/change/").content.decode()
    assert 'name="name"' not in page and "busy" in page
