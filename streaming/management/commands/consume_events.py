"""``python manage.py consume_events``: run the ingest consumer until SIGTERM/SIGINT."""

import gc
import signal

from django.core.management.base import BaseCommand

from streaming.ingest.kafka_loop import IngestConsumer


class Command(BaseCommand):
    help = "Consume MinIO bucket events from Kafka and store them as runs, steps and artifacts."

    def add_arguments(self, parser):
        parser.add_argument("--group", help="Kafka consumer group (default: KAFKA_CONSUMER_GROUP).")
        parser.add_argument("--bootstrap-servers", help="Kafka bootstrap servers.")
        parser.add_argument("--batch-size", type=int, help="Messages per transaction.")

    def handle(self, *args, **options):
        consumer = IngestConsumer(
            group_id=options["group"],
            bootstrap_servers=options["bootstrap_servers"],
            batch_size=options["batch_size"],
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: consumer.stop())
        # Everything loaded so far (Django, apps, modules) lives as long as
        # the process: keep it out of the cyclic GC's full collections, which
        # otherwise rescan it every few batches.
        gc.freeze()
        consumer.run()
