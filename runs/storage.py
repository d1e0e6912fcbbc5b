"""Object storage: the one module that reads and writes MinIO/S3 (docs/architecture.md).

Views (downloads), renderers (``ObjectSource``) and the rendition service
(preview objects) all go through here; nothing else builds a client.

Every ranged read sends ``If-Match: <etag>``, so a renderer (or a page
request) never mixes bytes of two versions; a changed object is a
``RenderError`` (the newer version has its own render task). Network and
server failures become ``StorageUnavailable``, which render tasks retry with
back-off.
"""

from __future__ import annotations

import io
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import unquote_plus
from xml.etree import ElementTree

import urllib3
from django.conf import settings
from django.db import connection
from minio import Minio, MinioAdmin
from minio.credentials import StaticProvider
from minio.error import MinioAdminException, MinioException, S3Error, ServerError
from minio.notificationconfig import NotificationConfig

from runs.rendering.base import RenderError, StorageUnavailable, too_large

DEFAULT_STORE = "default"


class UnknownStore(ValueError):
    """A bucket names a store alias that OBJECT_STORES does not configure."""


def store_aliases() -> list[str]:
    return sorted(settings.OBJECT_STORES)


def store_kind(store: str = DEFAULT_STORE) -> str:
    """``minio`` or ``seaweedfs``: how the store's events reach Kafka (docs/stores.md)."""
    config = settings.OBJECT_STORES.get(store or DEFAULT_STORE)
    if config is None:
        raise UnknownStore(f"object store {store!r} is not configured (OBJECT_STORES: {store_aliases()})")
    return config.get("kind", "minio")


@lru_cache(maxsize=8)
def minio_client(store: str = DEFAULT_STORE) -> Minio:
    """A client for the object store configured under ``store`` (OBJECT_STORES). Thread-safe,
    cached. Addresses and credentials come from settings only, never from the database."""
    config = settings.OBJECT_STORES.get(store or DEFAULT_STORE)
    if config is None:
        raise UnknownStore(f"object store {store!r} is not configured (OBJECT_STORES: {store_aliases()})")
    return Minio(
        config["endpoint"],
        access_key=config["access_key"],
        secret_key=config["secret_key"],
        secure=config["secure"],
    )


# --- readiness (vizsite/readiness.py, /readyz) ---------------------------------------


class StoreNotReady(Exception):
    """The store did not answer, or refused the credentials; the message names no address or secret."""


# Codes of S3 answers that refuse the credentials themselves. Any other S3 error
# (AccessDenied to list buckets, for a key limited to its buckets) comes from a
# store that is up and knows the key.
_CREDENTIALS_REFUSED = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


def store_ping(*, store: str, timeout_s: float) -> None:
    """Raise ``StoreNotReady`` unless ``store`` answers a signed request (ListBuckets)
    within ``timeout_s``. A client of its own: no retries (the shared client's urllib3
    retries would turn a dead store into half a minute of waiting)."""
    config = settings.OBJECT_STORES.get(store)
    if config is None:
        raise UnknownStore(f"object store {store!r} is not configured")
    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s), retries=False)
    client = Minio(
        config["endpoint"],
        access_key=config["access_key"],
        secret_key=config["secret_key"],
        secure=config["secure"],
        http_client=http,
    )
    try:
        client.list_buckets()
    except S3Error as exc:
        if exc.code in _CREDENTIALS_REFUSED:
            raise StoreNotReady(f"credentials refused ({exc.code})") from exc
    except ServerError as exc:
        raise StoreNotReady(f"server error (HTTP {exc.status_code})") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StoreNotReady(f"unreachable ({type(exc).__name__})") from exc
    finally:
        http.clear()


# --- reading one object version (renderers, table pages, full images) -------------

_GONE = {"NoSuchKey", "NoSuchBucket", "PreconditionFailed", "InvalidRange"}


class ObjectSource:
    """One version (by etag) of an object; ``name`` is what the user calls it."""

    def __init__(
        self,
        bucket: str,
        key: str,
        *,
        name: str = "",
        size: int | None = None,
        etag: str = "",
        content_type: str = "",
        store: str = DEFAULT_STORE,
    ):
        self.bucket, self.key, self.etag, self.store = bucket, key, etag, store
        self.name = name or key
        self.size = size
        self.content_type = content_type

    def _get(self, offset: int = 0, length: int | None = None):
        headers = {"If-Match": f'"{self.etag}"'} if self.etag else None
        try:
            return minio_client(self.store).get_object(
                self.bucket, self.key, offset=offset, length=length or 0, request_headers=headers
            )
        except S3Error as exc:
            if exc.code in _GONE:
                raise RenderError(
                    f"The object changed or was removed while it was read ({exc.code})."
                ) from exc
            raise StorageUnavailable(f"object storage error {exc.code}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"object storage unreachable: {exc}") from exc

    def _stream(self, offset: int, length: int | None, chunk_size: int) -> Iterator[bytes]:
        if self.size is not None and offset >= self.size:
            return
        resp = self._get(offset, length)
        try:
            yield from resp.stream(chunk_size)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise StorageUnavailable(f"object storage read failed: {exc}") from exc
        finally:
            resp.close()
            resp.release_conn()

    def read(self, limit: int, *, offset: int = 0) -> bytes:
        if limit <= 0:
            return b""
        return b"".join(self._stream(offset, limit, 256 * 1024))

    def read_all(self, cap: int, what: str) -> bytes:
        if self.size is not None and self.size > cap:
            raise RenderError(too_large(what, self.size, cap))
        data = self.read(cap + 1)
        if len(data) > cap:
            raise RenderError(too_large(what, len(data), cap))
        return data

    def chunks(self, chunk_size: int, *, offset: int = 0, length: int | None = None) -> Iterator[bytes]:
        return self._stream(offset, length, chunk_size)

    def location(self) -> dict:
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "store": self.store}


def source_at(location: dict, *, size: int | None = None, name: str = "") -> ObjectSource:
    """The source a payload's ``source`` location names (page requests, full views)."""
    return ObjectSource(
        location["bucket"],
        location["key"],
        etag=location.get("etag", ""),
        store=_location_store(location),
        size=size,
        name=name,
    )


def _location_store(location: dict) -> str:
    # Payloads written before stores had aliases say "endpoint": "" (the default store).
    return location.get("store") or DEFAULT_STORE


# --- downloads: an object's bytes streamed to the browser --------------------------


class ObjectGone(Exception):
    """The object an artifact names is no longer in its bucket."""


class ObjectStream:
    """An object's bytes as an iterator of chunks; releases the connection when done."""

    def __init__(self, response, chunk_size: int):
        self._response = response
        self._chunk_size = chunk_size
        length = response.headers.get("Content-Length")
        self.length = int(length) if length and length.isdigit() else None

    def __iter__(self):
        try:
            yield from self._response.stream(self._chunk_size)
        finally:
            self.close()

    def close(self) -> None:
        self._response.close()
        self._response.release_conn()


def object_stream(
    *, bucket: str, key: str, store: str = DEFAULT_STORE, chunk_size: int = 256 * 1024
) -> ObjectStream:
    """Open an object for streaming (never read whole into memory); ``ObjectGone`` if missing."""
    try:
        response = minio_client(store).get_object(bucket, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            raise ObjectGone(key) from exc
        raise
    return ObjectStream(response, chunk_size)


# --- listing: what a bucket holds (the reconciler's source of truth) -----------------


class ListedObject(NamedTuple):
    key: str
    size: int | None
    etag: str  # without quotes
    last_modified: datetime  # timezone-aware; ms precision on MinIO, s on SeaweedFS


class ListingOutOfOrder(RuntimeError):
    """The store listed a key not after the previous one: the reconciler cannot trust it."""


def objects_list(
    *, bucket: str, store: str = DEFAULT_STORE, prefix: str = "", start_after: str = ""
) -> Iterator[ListedObject]:
    """Every object under ``prefix``, in key (UTF-8 byte) order, after ``start_after``.

    Streams ListObjectsV2 pages (1,000 keys each), fetching the next page in a
    thread while the caller works on this one (at most two pages in memory,
    whatever the bucket holds). S3 promises byte order and the reconciler's
    page compare depends on it, so a key out of order raises
    ``ListingOutOfOrder`` instead of being trusted. Folder markers (keys
    ending in "/") are not objects. Network failures raise ``StorageUnavailable``.
    """
    pages: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        after = start_after
        try:
            while not stop.is_set():
                objects, truncated = _list_page(minio_client(store), bucket, prefix, after)
                pages.put(objects)
                if not truncated or not objects:
                    break
                after = objects[-1].key
        except BaseException as exc:  # handed to the caller's thread
            pages.put(exc)
        pages.put(None)

    thread = threading.Thread(target=fetch, name="listing", daemon=True)
    thread.start()
    previous = start_after.encode()
    try:
        while (page := pages.get()) is not None:
            if isinstance(page, BaseException):
                raise page
            for obj in page:
                encoded = obj.key.encode()
                if encoded <= previous:
                    raise ListingOutOfOrder(f"the store listed {obj.key!r} after {previous.decode()!r}")
                previous = encoded
                if not obj.key.endswith("/"):
                    yield obj
    except S3Error as exc:
        raise StorageUnavailable(f"listing bucket {bucket!r} failed: {exc.code} {exc.message}") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ElementTree.ParseError) as exc:
        raise StorageUnavailable(f"object storage unreachable while listing {bucket!r}: {exc}") from exc
    finally:
        stop.set()
        while thread.is_alive():  # unblock a fetcher waiting to hand over a page
            try:
                pages.get(timeout=0.1)
            except queue.Empty:
                pass


_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _list_page(client: Minio, bucket: str, prefix: str, start_after: str) -> tuple[list[ListedObject], bool]:
    """One ListObjectsV2 page, parsed directly. The client's own listing builds a rich
    object per key through namespaced XPath lookups and strptime, which capped a re-sweep
    at ~5,000 keys/s; this reads the four fields the reconciler needs (docs/performance.md).
    The request itself (signing, retries, errors) is still the client's."""
    query = {"list-type": "2", "delimiter": "", "encoding-type": "url", "max-keys": "1000", "prefix": prefix}
    if start_after:
        query["start-after"] = start_after
    response = client._execute("GET", bucket, query_params=query)
    root = ElementTree.fromstring(response.data)
    url_encoded = (root.findtext(f"{_S3_NS}EncodingType") or root.findtext("EncodingType")) == "url"
    truncated = (
        root.findtext(f"{_S3_NS}IsTruncated") or root.findtext("IsTruncated") or ""
    ).lower() == "true"
    objects = []
    for element in root:
        if not element.tag.endswith("Contents"):
            continue
        fields = {child.tag.rpartition("}")[2]: child.text or "" for child in element}
        key = fields.get("Key", "")
        if url_encoded:
            key = unquote_plus(key)
        size = fields.get("Size")
        objects.append(
            ListedObject(
                key,
                int(size) if size else None,
                fields.get("ETag", "").strip('"'),
                datetime.fromisoformat(fields["LastModified"]),
            )
        )
    return objects, truncated


# --- preview objects: what renderers store in the portal's own bucket -------------

_preview_buckets_ready: set[str] = set()


def _ensure_preview_bucket(client: Minio) -> str:
    name = settings.PREVIEW_BUCKET
    if name not in _preview_buckets_ready:
        if not client.bucket_exists(name):
            try:
                client.make_bucket(name)
            except Exception as exc:  # raced with another worker
                if not client.bucket_exists(name):
                    raise StorageUnavailable(f"cannot create the preview bucket: {exc}") from exc
        _preview_buckets_ready.add(name)
    return name


def preview_prefix() -> str:
    """Keys of one database never collide with another's (dev, tests, benchmarks)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(connection.settings_dict["NAME"]))


def preview_put(key: str, data: bytes, content_type: str) -> dict:
    """Store a preview object under ``key`` in PREVIEW_BUCKET; returns its location (with etag)."""
    client = minio_client()
    bucket = _ensure_preview_bucket(client)
    try:
        result = client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)
    except Exception as exc:
        raise StorageUnavailable(f"cannot store a preview: {exc}") from exc
    return {"bucket": bucket, "key": key, "etag": (result.etag or "").strip('"'), "store": DEFAULT_STORE}


def preview_read(key: str, cap: int) -> bytes:
    """A preview object's bytes (at most ``cap``); RenderError if missing or larger."""
    return ObjectSource(settings.PREVIEW_BUCKET, key).read_all(cap, "The preview")


def preview_get(key: str, cap: int) -> bytes | None:
    """A preview object's bytes (at most ``cap``), or None when there is no such object yet."""
    try:
        response = minio_client().get_object(settings.PREVIEW_BUCKET, key)
    except S3Error as exc:
        if exc.code in ("NoSuchKey", "NoSuchBucket"):
            return None
        raise StorageUnavailable(f"object storage error {exc.code}") from exc
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StorageUnavailable(f"object storage unreachable: {exc}") from exc
    try:
        return response.read(cap)
    finally:
        response.close()
        response.release_conn()


# --- administration: bucket notifications and MinIO's Kafka targets ---------------
# Used by the operations console (runs/services/buckets.py, runs/services/store_targets.py,
# runs/selectors/buckets.py; docs/operations.md). The admin API needs the store's
# credentials to carry MinIO's admin:ConfigUpdate right (the root user's do).


class StoreAdminError(Exception):
    """The object store refused an administrative request, or could not be reached."""


def store_error_text(store: str, exc: BaseException) -> str:
    """What to tell the operator about ``exc`` from store ``store``: the store's own
    code and message, never its address's credentials."""
    if isinstance(exc, S3Error):
        return f"object store {store!r} refused: {exc.code}: {exc.message}"
    if isinstance(exc, MinioAdminException):
        return f"object store {store!r} admin API refused: {_admin_message(exc)}"
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return f"object store {store!r} is not reachable: {type(exc).__name__}"
    return f"object store {store!r}: {exc}"


def _admin_message(exc: MinioAdminException) -> str:
    import json

    body = getattr(exc, "_body", "") or ""
    try:
        parsed = json.loads(body)
        return f"{parsed.get('Code', '')}: {parsed.get('Message', '')}".strip(": ")
    except ValueError:
        return f"HTTP {getattr(exc, '_code', '?')} {body[:300]}"


@lru_cache(maxsize=8)
def minio_admin(store: str = DEFAULT_STORE) -> MinioAdmin:
    """MinIO's admin API client for store ``store`` (same settings as ``minio_client``)."""
    config = settings.OBJECT_STORES.get(store or DEFAULT_STORE)
    if config is None:
        raise UnknownStore(f"object store {store!r} is not configured (OBJECT_STORES: {store_aliases()})")
    return MinioAdmin(
        endpoint=config["endpoint"],
        credentials=StaticProvider(config["access_key"], config["secret_key"]),
        secure=config["secure"],
        # A store that is down answers within seconds, not urllib3's default retries.
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=20), retries=urllib3.Retry(total=1, backoff_factor=0.2)
        ),
    )


def bucket_notification_read(*, store: str, bucket: str) -> NotificationConfig:
    """The notification configuration the store holds for ``bucket`` (``StoreAdminError``)."""
    try:
        return minio_client(store).get_bucket_notification(bucket)
    except (MinioException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise StoreAdminError(store_error_text(store, exc)) from exc


@dataclass(frozen=True)
class KafkaTarget:
    """One ``notify_kafka:<id>`` target of a MinIO server, as its admin API reports it."""

    id: str
    topic: str
    brokers: str
    from_env: bool  # defined by MINIO_NOTIFY_KAFKA_*_<id> variables: read-only through the API

    @property
    def arn(self) -> str:
        return f"arn:minio:sqs::{self.id}:kafka"


def _admin_call(store: str, call):
    """``call(admin client)``, with every failure turned into ``StoreAdminError``."""
    try:
        return call(minio_admin(store))
    except UnboundLocalError as exc:
        # minio-py 7.2's config_get releases an unassigned response in its ``finally``
        # when the request itself failed, hiding the admin error: report that one.
        cause = exc.__context__
        raise StoreAdminError(store_error_text(store, cause if cause is not None else exc)) from exc
    except (MinioAdminException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise StoreAdminError(store_error_text(store, exc)) from exc


def kafka_targets_read(*, store: str) -> list[KafkaTarget]:
    """The Kafka notification targets store ``store`` has loaded (its running configuration:
    a target set through the admin API appears here only after MinIO restarted)."""
    text = _admin_call(store, lambda admin: admin.config_get("notify_kafka"))
    return parse_kafka_targets(text)


def parse_kafka_targets(text: str) -> list[KafkaTarget]:
    """Targets from MinIO's ``get-config-kv notify_kafka`` text. Each target is a line
    ``notify_kafka:<id> key=value …``; a target set by environment variables is preceded
    by comment lines ``# MINIO_NOTIFY_KAFKA_<KEY>_<id>=value`` that override the stored
    values (MinIO merges environment over config: internal/config/config.go)."""
    import shlex

    targets, env_lines = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            env_lines.append(line.lstrip("# ").strip())
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        head, _, target_id = words[0].partition(":")
        if head != "notify_kafka" or not target_id or target_id == "_":
            env_lines = []
            continue
        values = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        suffix = f"_{target_id}"
        for env in env_lines:
            name, _, value = env.partition("=")
            if name.startswith("MINIO_NOTIFY_KAFKA_") and name.endswith(suffix):
                values[name[len("MINIO_NOTIFY_KAFKA_") : -len(suffix)].lower()] = value
        targets.append(
            KafkaTarget(
                id=target_id,
                topic=values.get("topic", ""),
                brokers=values.get("brokers", ""),
                from_env=bool(env_lines),
            )
        )
        env_lines = []
    return sorted(targets, key=lambda t: t.id)


def kafka_target_write(*, store: str, target_id: str, topic: str, brokers: str) -> None:
    """Store ``notify_kafka:<target_id>`` in MinIO's configuration. MinIO checks that the
    brokers answer before it saves, and loads the target at its next start."""
    _admin_call(
        store,
        lambda admin: admin.config_set(f"notify_kafka:{target_id}", {"brokers": brokers, "topic": topic}),
    )


def kafka_target_remove(*, store: str, target_id: str) -> None:
    """Remove ``notify_kafka:<target_id>`` from MinIO's stored configuration."""
    _admin_call(store, lambda admin: admin.config_reset("notify_kafka", target_id))


def store_restart(*, store: str) -> None:
    """Ask MinIO to restart (``service restart``): how it loads notification targets set
    through the admin API (notify_* are not among its dynamic sub-systems)."""
    _admin_call(store, lambda admin: admin.service_restart())


# --- probes (runs/services/probes.py, docs/operations.md#probe) ----------------------


def probe_object_put(*, store: str, bucket: str, key: str, data: bytes) -> None:
    """Upload a probe's small object; raises StoreAdminError with the store's reason."""
    try:
        minio_client(store).put_object(bucket, key, io.BytesIO(data), len(data), content_type="text/plain")
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StoreAdminError(store_error_text(store, exc)) from exc


def probe_object_remove(*, store: str, bucket: str, key: str) -> None:
    """Delete a probe's object (absent is fine); raises StoreAdminError with the store's reason."""
    try:
        minio_client(store).remove_object(bucket, key)
    except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
        raise StoreAdminError(store_error_text(store, exc)) from exc
