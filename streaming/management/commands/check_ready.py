"""``python manage.py check_ready``: the /readyz answer for processes that serve no HTTP.

An exec readiness probe for the consumer and the render workers: prints the
report as JSON and exits 0 when every service answers, 1 when one does not
(docs/operations.md#probes-and-metrics).
"""

import json

from django.core.management.base import BaseCommand, CommandError

from vizsite.readiness import readiness_report


class Command(BaseCommand):
    help = "Check that the database, Redis, Kafka and the object stores answer (exit 1 naming the rest)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, help="Seconds per check (default: READINESS_TIMEOUT_S).")

    def handle(self, *args, **options):
        report = readiness_report(timeout_s=options["timeout"])
        self.stdout.write(json.dumps(report, sort_keys=True))
        if not report["ok"]:
            raise CommandError(f"not ready: {', '.join(report['failed'])}")
