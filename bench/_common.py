"""Helpers shared by the benchmarks: Django set-up on a throwaway database, stats, output."""

import atexit
import json
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup_django(db_suffix: str = "bench") -> str:
    """Point Django at ``<db>_<suffix>`` (created and migrated if needed); returns its URL."""
    import environ

    # The bench settings (not base): MinIO events go to the bench topic, never to `make run`'s.
    os.environ["DJANGO_SETTINGS_MODULE"] = "vizsite.settings.bench"
    os.environ.setdefault("DJANGO_DEBUG", "false")
    base = os.environ.get("DATABASE_URL", "postgres://pipelens:pipelens@127.0.0.1:54329/pipelens")
    parsed = environ.Env.db_url_config(base)
    name = f"{parsed['NAME']}_{db_suffix}"
    url = base.rsplit("/", 1)[0] + "/" + name
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = url
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    return url


_events_topic = None


def claim_events_topic() -> str:
    """The benchmark's MinIO topic (settings.MINIO_KAFKA_TOPIC): created now, deleted when
    this process exits (unless another benchmark or test session still uses it). Call it
    before registering a bucket that publishes through MinIO."""
    global _events_topic
    if _events_topic is None:
        from contextlib import ExitStack

        from django.conf import settings

        from runs.models import KafkaTopic
        from streaming.ingest.session_topics import session_topic

        stack = ExitStack()
        _events_topic = stack.enter_context(
            session_topic(settings.MINIO_KAFKA_TOPIC, bootstrap=settings.KAFKA_BOOTSTRAP_SERVERS)
        )
        atexit.register(stack.close)
        # A bench database from before benchmarks had a topic of their own names
        # `make run`'s topic too: the bench consumers would read all of its history.
        KafkaTopic.objects.exclude(name=_events_topic).update(enabled=False)
    return _events_topic


def percentile(values, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values) -> float:
    return statistics.median(values)


def report(figures: dict) -> None:
    """Print the figures with the core count; the last line is the JSON object."""
    figures = {**figures, "cores": os.cpu_count()}
    for name, value in figures.items():
        print(f"{name:>24}: {value}")
    print(json.dumps(figures))


def peak_rss_mb(pid: int) -> float:
    """Peak resident set size (VmHWM) of a live process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used, in seconds.

    On a shared 2-core machine wall-clock rates move with the neighbours'
    load; CPU per event moves much less, so benchmarks print both.
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a live process, summed by thread name.

    Shows where a process's CPU went without a profiler: the main thread, a
    worker thread, librdkafka's broker threads (``rdk:…``), and so on.
    """
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        name = name.rstrip("0123456789-")  # rdk:broker1, rdk:broker2, ... as one
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def server_times(client, url: str, requests: int) -> list[float]:
    """Milliseconds of ``requests`` GETs of ``url`` through Django's test client (server
    time, no network); each must answer 200."""
    import time

    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return timings
