"""``python manage.py setup_demo``: the demo login and the ``mlpipeline`` bucket for ``make run``."""

import os

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from runs.models import Bucket
from runs.services.buckets import bucket_register
from runs.services.recipes import recipes_install_starters


class Command(BaseCommand):
    help = "Create the demo superuser and register the mlpipeline bucket (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default=os.environ.get("PIPELENS_DEMO_USER", "demo"))
        parser.add_argument("--password", default=os.environ.get("PIPELENS_DEMO_PASSWORD", "pipelens-demo"))
        parser.add_argument("--bucket", default="mlpipeline")
        parser.add_argument(
            "--store",
            default=os.environ.get("PIPELENS_STORE") or "default",
            help="object store alias of the bucket; PIPELENS_STORE=seaweedfs make run uses SeaweedFS",
        )

    def handle(self, *args, username, password, bucket, store, **options):
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
        if settings.RECIPES_ENABLED:
            starters = recipes_install_starters(owner=user)
            self.stdout.write(f"starter recipes: {', '.join(r.name for r in starters)}")
        self.stdout.write(
            f"demo login: {username} / {password}; "
            f"bucket {bucket} (store {store}) -> topic {registered.topic}"
        )
