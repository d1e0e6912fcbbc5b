"""Operations console, grants (issue 9 item 4): granted, previewed and revoked from the admin
through runs/services/access.py; the preview is the grant rule itself (runs/selectors/access.py)."""

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command

from runs.models import Bucket, BucketGrant
from runs.selectors.access import runs_visible_to
from tests.runs.portal_helpers import ingest

pytestmark = pytest.mark.django_db


@pytest.fixture
def data():
    bucket = Bucket.objects.create(name="lab")
    other = Bucket.objects.create(name="other")
    # generic layout: <run>/<step>/<file>, so the run keys are team-x, team-xavier, team-y
    ingest(bucket, "team-x/train/a.txt", "team-xavier/train/a.txt", "team-y/eval/b.txt")
    ingest(other, "team-x/train/a.txt")
    return bucket, other, Group.objects.create(name="team-x")


def test_preview_lists_the_runs_the_grant_would_show_and_saves_nothing(admin_client, data):
    bucket, _, group = data
    response = admin_client.post(
        "/admin/runs/bucketgrant/add/",
        {"group": group.pk, "bucket": bucket.pk, "key_prefix": "/team-x/", "namespace": "", "_preview": "1"},
    )
    page = response.content.decode()
    assert response.status_code == 200 and '<strong class="grant-preview-count">1</strong>' in page
    preview = page.split('id="grant-preview"', 1)[1].split("</fieldset>", 1)[0]
    assert "<code>team-x</code>" in preview and "team-xavier" not in preview and "team-y" not in preview
    assert not BucketGrant.objects.exists()


def test_granting_and_revoking_from_the_admin_changes_what_members_see(admin_client, data, django_user_model):
    bucket, _, group = data
    member = django_user_model.objects.create_user("member", password="pw")
    member.groups.add(group)
    response = admin_client.post(
        "/admin/runs/bucketgrant/add/", {"group": group.pk, "bucket": bucket.pk, "key_prefix": "team-x/"}
    )
    assert response.status_code == 302
    grant = BucketGrant.objects.get()
    assert grant.key_prefix == "team-x"
    assert list(runs_visible_to(user=member).values_list("bucket__name", "run_key")) == [("lab", "team-x")]
    page = admin_client.get(f"/admin/runs/bucketgrant/{grant.pk}/change/").content.decode()
    assert '<strong class="grant-preview-count">1</strong>' in page and 'name="key_prefix"' not in page
    admin_client.post(f"/admin/runs/bucketgrant/{grant.pk}/delete/", {"post": "yes"})
    assert not BucketGrant.objects.exists() and not runs_visible_to(user=member).exists()


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/runs/kafkatopic/add/",
        "/admin/runs/bucket/add/",
        "/admin/runs/bucket/targets/",
        "/admin/runs/bucketgrant/add/",
    ],
)
def test_a_non_staff_user_reaches_none_of_the_console(client, django_user_model, url):
    client.force_login(django_user_model.objects.create_user("viewer", password="pw"))
    response = client.get(url)
    assert response.status_code == 302 and response.url.startswith("/admin/login/")
    assert client.post(url, {}).status_code == 302


def test_setup_demo_creates_a_viewer_with_a_grant_beside_the_superuser(
    minio, kafka_bootstrap, django_user_model
):
    call_command("setup_demo", "--bucket", "console-demo-bucket")
    try:
        viewer = django_user_model.objects.get(username="viewer")
        assert not viewer.is_superuser and not viewer.is_staff
        assert django_user_model.objects.get(username="demo").is_superuser
        grant = BucketGrant.objects.get(bucket__name="console-demo-bucket")
        assert viewer.groups.filter(pk=grant.group_id).exists()
        call_command("setup_demo", "--bucket", "console-demo-bucket")  # idempotent
        assert BucketGrant.objects.count() == 1
    finally:
        minio.delete_bucket_notification("console-demo-bucket")
        minio.remove_bucket("console-demo-bucket")
