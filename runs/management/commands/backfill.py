"""``python manage.py backfill BUCKET [--prefix P] [--since DATE]``: import what a bucket holds.

A reconciliation sweep (runs/services/reconcile.py) run in the foreground with
a progress line. Safe to interrupt (Ctrl-C) and run again: it resumes after the
last stored page. Safe beside a running consumer: every write goes through the
same newer-wins rule, and a sweep of the same prefix by the consumer is waited
for. Imported artifacts render when first viewed, so a million objects never
hold up live renders (docs/reconcile.md).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from datetime import UTC, datetime
from datetime import time as dtime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from runs.models import Bucket, BucketSweep
from runs.rendering.base import StorageUnavailable
from runs.services.buckets import bucket_register
from runs.services.reconcile import SweepBusy, bucket_reconcile
from runs.storage import UnknownStore, objects_list

_BUSY_RETRY_S = 5.0


def _since(value: str | None) -> datetime | None:
    if not value:
        return None
    at = parse_datetime(value)
    if at is None:
        day = parse_date(value)
        if day is None:
            raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD) or an ISO 8601 date-time")
        at = datetime.combine(day, dtime.min)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """One line of progress: listed (of the total when counted), stored, rate, ETA."""

    def __init__(self, out, total: int | None):
        self.out, self.total = out, total
        self.started = time.monotonic()
        self.first_listed: int | None = None
        self.last_line = 0.0
        self.tty = out.isatty()

    def __call__(self, sweep: BucketSweep, *, final: bool = False) -> None:
        now = time.monotonic()
        if self.first_listed is None:
            self.first_listed = sweep.listed  # a resumed sweep counts from where it was
        if not final and not self.tty and now - self.last_line < 5.0:
            return
        self.last_line = now
        elapsed = max(now - self.started, 1e-6)
        rate = (sweep.listed - self.first_listed) / elapsed
        listed = f"{sweep.listed:,}" + (f" / {self.total:,}" if self.total is not None else "")
        eta = ""
        if self.total is not None and rate > 0 and not final:
            eta = f" · ETA {_duration(max(self.total - sweep.listed, 0) / rate)}"
        line = (
            f"listed {listed} · stored {sweep.stored:,} · deleted {sweep.deleted:,}"
            f" · {rate:,.0f} objects/s{eta} · {_duration(elapsed)}"
        )
        self.out.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        if final and self.tty:
            self.out.write("\n")
        self.out.flush()


class Command(BaseCommand):
    help = (
        "Import the objects a bucket already holds (resumable; safe while the consumer runs). "
        "Imported artifacts render when first viewed."
    )

    def add_arguments(self, parser):
        parser.add_argument("bucket")
        parser.add_argument("--prefix", default="", help="only keys under this prefix")
        parser.add_argument(
            "--since",
            help="only objects modified since this date (YYYY-MM-DD or ISO 8601); nothing is marked deleted",
        )
        parser.add_argument(
            "--register",
            action="store_true",
            help="register the bucket first (creates it if missing and applies its notification)",
        )
        parser.add_argument("--store", default="default", help="object store alias, with --register")
        parser.add_argument("--page-size", type=int, help="keys compared per transaction")
        parser.add_argument("--no-count", action="store_true", help="skip counting first (no ETA)")

    def handle(self, *args, bucket, prefix, since, register, store, page_size, no_count, **options):
        since_at = _since(since)
        try:
            target = (
                bucket_register(name=bucket, store=store) if register else Bucket.objects.get(name=bucket)
            )
        except Bucket.DoesNotExist:
            raise CommandError(
                f"bucket {bucket!r} is not registered in Pipelens: register it in the admin, "
                "or run this command with --register [--store ALIAS]"
            ) from None
        except UnknownStore as exc:
            raise CommandError(str(exc)) from None

        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

        total = None
        if not no_count:
            self.stderr.write(f"counting the objects of {bucket}/{prefix} …")
            try:
                total = sum(1 for _ in objects_list(bucket=target.name, store=target.store, prefix=prefix))
            except StorageUnavailable as exc:
                raise CommandError(str(exc)) from None
        progress = Progress(sys.stderr, total)
        while True:
            try:
                sweep = bucket_reconcile(
                    bucket=target,
                    prefix=prefix,
                    reason=BucketSweep.Reason.BACKFILL,
                    lazy_render=True,
                    since=since_at,
                    page_size=page_size,
                    should_stop=stop.is_set,
                    progress=progress,
                )
                break
            except SweepBusy as exc:
                self.stderr.write(f"{exc}; waiting for it to finish …")
                if stop.wait(_BUSY_RETRY_S):
                    raise CommandError("interrupted while waiting") from None
        progress(sweep, final=True)
        if sweep.status == BucketSweep.Status.FAILED:
            raise CommandError(f"backfill failed: {sweep.error} (run the command again to retry)")
        if sweep.status == BucketSweep.Status.RUNNING:
            self.stderr.write(f"interrupted after {sweep.cursor!r}; run the same command again to resume")
            sys.exit(130)
        self.stdout.write(
            f"backfill of {bucket}/{prefix} done: {sweep.listed:,} listed, {sweep.stored:,} stored, "
            f"{sweep.deleted:,} marked deleted, {sweep.rejected:,} matching no layout (Ingest errors)"
        )
