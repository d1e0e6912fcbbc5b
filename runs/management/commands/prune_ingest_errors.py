"""``python manage.py prune_ingest_errors``: delete IngestErrors past INGEST_ERROR_RETENTION_DAYS."""

from django.core.management.base import BaseCommand

from runs.services.ingest import ingest_errors_prune


class Command(BaseCommand):
    help = "Delete ingest errors older than INGEST_ERROR_RETENTION_DAYS (the consumer also does it hourly)."

    def handle(self, *args, **options):
        removed = ingest_errors_prune()
        self.stdout.write(f"removed {removed} ingest errors")
