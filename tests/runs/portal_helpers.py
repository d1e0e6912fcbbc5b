"""Test data for the portal: runs built through the real ingest service, users with grants."""

from django.contrib.auth.models import Group

from runs.models import Run
from runs.services.access import bucket_grant_create
from runs.services.ingest import ingest_events
from tests.factories import object_event


def ingest(bucket, *keys, seconds: float = 0.0, size: int = 10):
    """Store objects ``keys`` in ``bucket`` as the consumer would (one batch)."""
    return ingest_events(
        events=[object_event(bucket.name, k, seconds=seconds + i, size=size) for i, k in enumerate(keys)]
    )


def run_of(bucket, run_key: str) -> Run:
    return Run.objects.get(bucket=bucket, run_key=run_key)


def user_with_grant(
    django_user_model, username: str, bucket=None, *, key_prefix: str = "", namespace: str = ""
):
    user = django_user_model.objects.create_user(username=username, password="pw-" + username)
    if bucket is not None:
        group, _ = Group.objects.get_or_create(name=f"g-{username}")
        user.groups.add(group)
        bucket_grant_create(group=group, bucket=bucket, key_prefix=key_prefix, namespace=namespace)
    return user
