"""The consumer's background thread: reconciliation sweeps and periodic jobs (run lifecycle).

Events are the fast path; this thread makes the database complete anyway
(docs/reconcile.md). It runs beside the consume loop in ``consume_events``,
on its own database connection, and decides which sweep runs next:

1. gaps the consume loop saw (broker unreachable, partitions lost, committed
   offsets missing or beyond retention): the whole of every bucket on the
   affected topics, rendered at once;
2. sweeps staff requested (admin action) or left unfinished by a killed process;
3. at start and every RECONCILE_RECENT_INTERVAL_S: the prefix of each run with
   an event in the last RECONCILE_RECENT_WINDOW_S;
4. every RECONCILE_FULL_INTERVAL_S per bucket (persisted, so restarts do not
   repeat it): the whole bucket, rendered lazily. A first start on a bucket that
   already holds objects imports them this way.

Sweeps of one (bucket, prefix) never overlap across processes (an advisory
lock); a stop request ends the sweep in hand after its current page, and the
next start resumes it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from django.utils import timezone

from runs.models import Bucket, BucketSweep
from runs.services.lifecycle import lifecycle_upkeep, runs_poll_kfp
from runs.services.reconcile import (
    SweepBusy,
    bucket_reconcile,
    full_sweep_due,
    recent_run_prefixes,
    sweeps_requested,
)
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.maintenance")

_GAP_RETRY_S = 10.0


@dataclass
class PeriodicJob:
    """A function the thread calls every ``period_s`` seconds (``period_s`` read at each tick)."""

    name: str
    period_s: Callable[[], float]
    run: Callable[[], object]
    last: float = field(default_factory=time.monotonic)  # first run one period after start


class Maintenance:
    """Runs sweeps and periodic jobs until ``stop()``; the consume loop reports gaps."""

    def __init__(self, *, topics: Callable[[], Iterable[str]], tick_s: float = 1.0) -> None:
        self._topics = topics  # the topics the consume loop follows right now
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._gaps: dict[str, str] = {}  # topic -> why
        self._gaps_not_before = 0.0  # after a failed gap sweep (store down), wait a little
        self._recent_at = float("-inf")
        self._started = False
        # Run lifecycle (docs/portal.md#run-status): idle runs, ended steps, Kubeflow's states.
        self.jobs: list[PeriodicJob] = [
            PeriodicJob("lifecycle", lambda: settings.RUN_LIFECYCLE_TICK_S, lifecycle_upkeep),
            PeriodicJob("kfp_poll", lambda: settings.KFP_POLL_S, runs_poll_kfp),
        ]
        self._thread: threading.Thread | None = None

    # --- called from the consume loop's thread ---

    def gap(self, topics: Iterable[str], why: str) -> None:
        """The stream may have lost events of ``topics``: sweep their buckets whole."""
        with self._lock:
            for topic in topics:
                self._gaps.setdefault(topic, why)
        log_event(
            logger, "stream_gap", level=logging.WARNING, topics=",".join(sorted(topics)) or "-", why=why
        )

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="maintenance", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- the thread ---

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self._tick_s):
                try:
                    close_old_connections()
                    self.tick()
                except DatabaseError as exc:
                    log_event(
                        logger, "maintenance_failed", level=logging.WARNING, error=str(exc).strip()[:200]
                    )
                    connection.close()
                except Exception as exc:  # one bad tick must not end reconciliation for good
                    logger.exception("maintenance tick failed: %r", exc)
        finally:
            connection.close()

    def tick(self) -> None:
        """One round: what is due, most urgent first. Public so tests can drive it."""
        for job in self.jobs:
            now = time.monotonic()
            if now - job.last >= job.period_s():
                job.last = now
                try:
                    job.run()
                except DatabaseError:
                    raise
                except Exception as exc:  # one failing job must not starve the others
                    log_event(
                        logger, "job_failed", level=logging.WARNING, job=job.name, error=repr(exc)[:200]
                    )
        if not settings.RECONCILE_ENABLED:
            return
        self._sweep_gaps()
        for sweep in sweeps_requested():
            if self.stopping:
                return
            self._sweep(sweep.bucket, sweep.prefix, sweep.reason, lazy=sweep.lazy_render)
        buckets = self._buckets()
        now = time.monotonic()
        if now - self._recent_at >= settings.RECONCILE_RECENT_INTERVAL_S:
            self._recent_at = now
            reason = BucketSweep.Reason.RECENT if self._started else BucketSweep.Reason.START
            self._started = True
            since = timezone.now() - timedelta(seconds=settings.RECONCILE_RECENT_WINDOW_S)
            for bucket in buckets:
                for prefix in recent_run_prefixes(bucket=bucket, since=since):
                    if self.stopping:
                        return
                    self._sweep(bucket, prefix, reason)
        for bucket in buckets:
            if self.stopping:
                return
            if full_sweep_due(bucket=bucket):
                self._sweep(bucket, "", BucketSweep.Reason.FULL, lazy=True)

    def _sweep_gaps(self) -> None:
        if time.monotonic() < self._gaps_not_before:
            return
        with self._lock:
            gaps, self._gaps = self._gaps, {}
        if not gaps:
            return
        for bucket in (
            Bucket.objects.filter(topic__name__in=list(gaps)).select_related("topic").order_by("name")
        ):
            if not self._sweep(bucket, "", BucketSweep.Reason.GAP):
                # Busy elsewhere, interrupted or failed (store down): keep the gap, retry soon.
                with self._lock:
                    self._gaps.setdefault(bucket.topic.name, gaps[bucket.topic.name])
                self._gaps_not_before = time.monotonic() + _GAP_RETRY_S

    def _buckets(self) -> list[Bucket]:
        topics = list(self._topics())
        return list(Bucket.objects.filter(topic__name__in=topics).select_related("topic").order_by("name"))

    def _sweep(self, bucket: Bucket, prefix: str, reason: str, *, lazy: bool = False) -> bool:
        """Run one sweep to its end; False when it could not (busy, stopped, failed)."""
        try:
            sweep = bucket_reconcile(
                bucket=bucket,
                prefix=prefix,
                reason=reason,
                lazy_render=lazy,
                should_stop=lambda: self.stopping,
            )
        except SweepBusy:
            return False
        return sweep.status == BucketSweep.Status.DONE
