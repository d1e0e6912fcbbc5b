"""Readiness: can this process reach every service it depends on? (docs/operations.md#probes-and-metrics)

``/readyz`` (vizsite/probes.py) and ``manage.py check_ready`` answer with
``readiness_report()``. Each check talks to one service with a short timeout
(``READINESS_TIMEOUT_S``), all of them at once on threads of their own, so the
answer takes about one timeout however many services are down:

- ``database``: a fresh connection (not the process's own) and ``SELECT 1``;
- ``redis:channels``, ``redis:broker``, ``redis:cache``: ``PING`` to the channel
  layer's Redis, Celery's broker and the cache (those that are Redis);
- ``kafka``: the broker's metadata (``list_topics``) through an AdminClient;
- ``store:<alias>``: a signed ListBuckets to each configured object store.

A failed check is named with a short reason of our own words ("unreachable
(ConnectionError)", "credentials refused (InvalidAccessKeyId)", "timed out"):
never an exception message, which may carry a URL with credentials. The full
error goes to the log, with any ``user:password@`` removed.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import psycopg
import redis
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from django.conf import settings
from django.db import connections
from redis.backoff import NoBackoff
from redis.retry import Retry

from runs.storage import StoreNotReady, store_ping
from streaming.ingest.kafka_config import admin_config
from vizsite.logs import log_event

logger = logging.getLogger("pipelens.readiness")

# Checks of concurrent /readyz requests share these threads; each check ends
# within about READINESS_TIMEOUT_S, so a few threads per service are enough.
_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="readiness")

_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s]+@")


class NotReady(Exception):
    """A check failed; the message is shown to whoever asks /readyz (no address, no secret)."""


def scrub(text: str) -> str:
    """``text`` without credentials in URLs (``redis://:secret@host`` → ``redis://***@host``)."""
    return _CREDENTIALS_IN_URL.sub("***@", text)


# --- the checks ----------------------------------------------------------------------


def check_database(*, alias: str = "default", timeout_s: float) -> None:
    params = connections[alias].get_connection_params()
    # libpq counts whole seconds and takes at least 2.
    params["connect_timeout"] = max(int(timeout_s + 0.999), 2)
    try:
        with psycopg.connect(**params) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise NotReady(f"unreachable ({type(exc).__name__})") from exc


def check_redis(*, url: str, timeout_s: float) -> None:
    client = redis.Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, retry=Retry(NoBackoff(), 0)
    )
    try:
        client.ping()
    except redis.AuthenticationError as exc:
        raise NotReady("credentials refused") from exc
    except redis.RedisError as exc:
        raise NotReady(f"unreachable ({type(exc).__name__})") from exc
    finally:
        client.close()


def check_kafka(*, bootstrap_servers: str, timeout_s: float) -> None:
    admin = AdminClient(
        {
            **admin_config(bootstrap_servers=bootstrap_servers, timeout_s=timeout_s),
            # librdkafka would print every failed connection attempt to stderr.
            "logger": logging.getLogger("pipelens.readiness.kafka"),
        }
    )
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        name = error.name() if hasattr(error, "name") else type(exc).__name__
        raise NotReady(f"unreachable ({name})") from exc


def check_store(*, alias: str, timeout_s: float) -> None:
    try:
        store_ping(store=alias, timeout_s=timeout_s)
    except StoreNotReady as exc:
        raise NotReady(str(exc)) from exc


# --- which checks this deployment has ---------------------------------------------------


def _redis_urls() -> dict[str, str]:
    """Check name → URL of every Redis the settings use (channel layer, broker, cache)."""
    urls: dict[str, str] = {}
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "channels_redis" in layer.get("BACKEND", ""):
        hosts = layer.get("CONFIG", {}).get("hosts") or []
        host = hosts[0] if hosts else None
        if isinstance(host, dict):
            host = host.get("address")
        if isinstance(host, str):
            urls["redis:channels"] = host
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    if broker.startswith(("redis://", "rediss://")):
        urls["redis:broker"] = broker
    cache = settings.CACHES.get("default", {})
    if cache.get("BACKEND", "").endswith("RedisCache"):
        location = cache.get("LOCATION")
        urls["redis:cache"] = location[0] if isinstance(location, list | tuple) else location
    return urls


def configured_checks(timeout_s: float) -> dict[str, Callable[[], None]]:
    """Check name → a call that raises ``NotReady`` (or anything) when that service is not ready."""
    checks: dict[str, Callable[[], None]] = {
        "database": lambda: check_database(timeout_s=timeout_s),
    }
    for name, url in _redis_urls().items():
        checks[name] = lambda url=url: check_redis(url=url, timeout_s=timeout_s)
    checks["kafka"] = lambda: check_kafka(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS, timeout_s=timeout_s
    )
    for alias in sorted(settings.OBJECT_STORES):
        checks[f"store:{alias}"] = lambda alias=alias: check_store(alias=alias, timeout_s=timeout_s)
    return checks


def _timed(check: Callable[[], None]) -> dict:
    started = time.monotonic()
    error, detail = "", None
    try:
        check()
    except NotReady as exc:
        error = str(exc)
        detail = exc.__cause__
        while detail is not None and detail.__cause__ is not None:
            detail = detail.__cause__  # the library's own error, for the log
    except Exception as exc:  # a check's own bug must still give an answer
        error = f"check failed ({type(exc).__name__})"
        detail = exc
    result = {"ok": not error, "ms": round((time.monotonic() - started) * 1000, 1)}
    if error:
        result["error"] = error
        result["detail"] = scrub(repr(detail))[:300] if detail is not None else ""
    return result


def readiness_report(*, timeout_s: float | None = None) -> dict:
    """``{"ok": bool, "checks": {name: {"ok", "ms", "error"?}}, "failed": [names]}``."""
    timeout_s = settings.READINESS_TIMEOUT_S if timeout_s is None else timeout_s
    checks = configured_checks(timeout_s)
    futures = {name: _pool.submit(_timed, check) for name, check in checks.items()}
    # Every check bounds its own wait; this bounds the answer if one does not.
    wait(futures.values(), timeout=timeout_s + 1.0)
    results = {}
    for name, future in futures.items():
        if future.done():
            results[name] = future.result()
        else:
            results[name] = {"ok": False, "ms": round((timeout_s + 1.0) * 1000, 1), "error": "timed out"}
    failed = sorted(name for name, result in results.items() if not result["ok"])
    for name in failed:
        log_event(
            logger,
            "not_ready",
            level=logging.WARNING,
            check=name,
            error=results[name]["error"],
            detail=results[name].pop("detail", ""),
        )
    return {"ok": not failed, "checks": results, "failed": failed}
