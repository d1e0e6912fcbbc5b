"""Helpers shared by the benchmarks: Django set-up on a throwaway database, stats, output."""

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

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizsite.settings.base")
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
