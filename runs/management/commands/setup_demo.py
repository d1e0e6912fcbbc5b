"""``python manage.py setup_demo``: the demo logins and the ``mlpipeline`` bucket for ``make run``.

Two logins: ``demo``, a superuser who sees everything and reaches the
operations console, and ``viewer``, an ordinary user who sees the bucket's
runs only through a grant to the group ``demo-viewers`` (docs/security.md).
"""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from runs.models import Bucket
from runs.services.access import bucket_grant_create
from runs.services.buckets import bucket_register
from runs.services.recipes import recipes_install_starters


class Command(BaseCommand):
    help = (
        "Create the demo superuser, a viewer with a grant, and register the mlpipeline bucket (idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("PIPELENS_DEMO_USER", "demo"))
        parser.add_argument("--password", default=os.environ.get("PIPELENS_DEMO_PASSWORD", "pipelens-demo"))
        parser.add_argument("--viewer", default=os.environ.get("PIPELENS_VIEWER_USER", "viewer"))
        parser.add_argument(
            "--viewer-password", default=os.environ.get("PIPELENS_VIEWER_PASSWORD", "pipelens-viewer")
        )
        parser.add_argument("--bucket", default="mlpipeline")
        parser.add_argument(
            "--store",
            default=os.environ.get("PIPELENS_STORE") or "default",
            help="object store alias of the bucket; PIPELENS_STORE=seaweedfs make run uses SeaweedFS",
        )

    def handle(self, *args, username, password, viewer, viewer_password, bucket, store, **options):
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        if store == "minio":
            store = "default"
        registered = bucket_register(name=bucket, store=store)
        if registered.notification_status not in (
            Bucket.NotificationStatus.CONFIGURED,
            Bucket.NotificationStatus.IN_FILER_CONFIG,
        ):
            self.stderr.write(
                f"bucket {bucket}: notification not configured: {registered.notification_error}"
            )
        # An ordinary user who sees the bucket through a grant, as a team member would.
        member, _ = User.objects.get_or_create(username=viewer, defaults={"email": f"{viewer}@localhost"})
        member.is_staff = member.is_superuser = False
        member.set_password(viewer_password)
        member.save()
        group, _ = Group.objects.get_or_create(name="demo-viewers")
        member.groups.add(group)
        bucket_grant_create(group=group, bucket=registered)
        if settings.RECIPES_ENABLED:
            starters = recipes_install_starters(owner=user)
            self.stdout.write(f"starter recipes: {', '.join(r.name for r in starters)}")
        self.stdout.write(
            f"demo login: {username} / {password} (superuser, console at /admin/); "
            f"viewer login: {viewer} / {viewer_password} (group demo-viewers, granted {bucket}); "
            f"bucket {bucket} (store {store}) -> topic {registered.topic}"
        )
