"""``python manage.py run_lifecycle [--loop]``: bring run and step statuses up to date.

Once by default: ended KFP v1 steps, idle runs, and (with KFP_API_URL set) one
poll of the KFP API. ``--loop`` repeats the first two every RUN_LIFECYCLE_TICK_S
and the poll every KFP_POLL_S until SIGTERM or Ctrl-C (docs/portal.md#run-status).
"""

import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from runs.services.lifecycle import lifecycle_upkeep, runs_poll_kfp


class Command(BaseCommand):
    help = "Turn quiet runs idle, end KFP v1 steps whose log arrived, poll the KFP API (once, or --loop)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep going until SIGTERM or Ctrl-C")

    def handle(self, *args, loop=False, **options):
        stop = threading.Event()
        if loop:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        polled_at = float("-inf")
        while True:
            upkeep = lifecycle_upkeep()
            line = f"steps ended: {upkeep['steps_ended']}, runs changed: {upkeep['runs_changed']}"
            if settings.KFP_API_URL and time.monotonic() - polled_at >= settings.KFP_POLL_S:
                polled_at = time.monotonic()
                line += f", runs changed by KFP: {runs_poll_kfp()}"
            self.stdout.write(line)
            if not loop or stop.wait(settings.RUN_LIFECYCLE_TICK_S):
                return
