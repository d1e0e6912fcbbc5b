"""Bucket probes (issue 9 item 3): put → topic → stored → pushed, as the console's "Send a
probe" measures it, against a real daphne and ``consume_events`` on the bench database.
Target: p99 ≤ 500 ms from the put to the push, none failed. Run with ``make bench B=probe``;
``BENCH_STORE=seaweedfs`` probes a SeaweedFS bucket (events from the filer's topic).

BENCH_PROBES probes (20), one after the other, each settled before the next is sent
(``probe_refresh`` polled every 10 ms, as the page polls): the figure is the probe's own
``put → pushed``, the hops are the probe row's timestamps (docs/operations.md#probe).
"""

import os
import time

from _common import median, percentile, report, setup_django
from _live import live_services

PROBES = int(os.environ.get("BENCH_PROBES", "20"))
POLL_S = 0.01


def settle(probe):
    from runs.models import Probe
    from runs.services.bucket_probes import probe_refresh

    while probe_refresh(probe=probe).status == Probe.Status.PENDING:
        time.sleep(POLL_S)
    return probe


def main() -> None:
    # BENCH_DB: another database suffix, for a branch whose migrations the shared bench
    # database must not receive.
    db_url = setup_django(os.environ.get("BENCH_DB", "bench"))
    from runs.models import Probe
    from runs.services.bucket_probes import probe_send

    with live_services(db_url) as services:
        services.put("warm-up/step/file.txt")
        services.wait_run("warm-up")  # the consumer is subscribed and storing
        probes = []
        for _ in range(PROBES):
            probes.append(settle(probe_send(bucket=services.bucket)))
            time.sleep(0.1)
        failed = [p for p in probes if p.status != Probe.Status.SUCCEEDED]
        for p in failed:
            print(f"failed probe {p.pk}: {p.error}")
        hops = [p.hops_ms() for p in probes if p.status == Probe.Status.SUCCEEDED]

    def col(name):
        return [h[name] for h in hops if h[name] is not None]

    def stat(values, q=None):
        if not values:
            return None
        return round(median(values) if q is None else percentile(values, q), 1)

    total = col("total")
    report(
        {
            "store": os.environ.get("BENCH_STORE", "default"),
            "put_to_topic_p50_ms": stat(col("put_to_topic")),
            "topic_to_stored_p50_ms": stat(col("topic_to_stored")),
            "topic_to_stored_p99_ms": stat(col("topic_to_stored"), 99),
            "stored_to_pushed_p50_ms": stat(col("stored_to_pushed")),
            "stored_to_pushed_p99_ms": stat(col("stored_to_pushed"), 99),
            "probes": len(probes),
            "probe_ms_p50": stat(total),
            "probe_ms_p99": stat(total, 99),
            "failed": len(failed),
        }
    )


if __name__ == "__main__":
    main()
