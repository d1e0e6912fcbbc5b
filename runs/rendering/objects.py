"""Objects in MinIO/S3 as renderer sources: ranged, streamed, pinned to one version.

Every read sends ``If-Match: <etag>``, so a renderer (or a page request)
never mixes bytes of two versions; a changed object is a ``RenderError``
(the newer version has its own render task). Network and server failures
become ``StorageUnavailable``, which the task retries with back-off.
"""

from __future__ import annotations

from collections.abc import Iterator

import urllib3
from minio.error import MinioException, S3Error

from runs.rendering.base import RenderError, StorageUnavailable, too_large
from runs.storage import minio_client

_GONE = {"NoSuchKey", "NoSuchBucket", "PreconditionFailed", "InvalidRange"}


class ObjectSource:
    """One version (by etag) of an object; ``name`` is what the user calls it."""

    def __init__(self, bucket: str, key: str, *, name: str = "", size: int | None = None,
                 etag: str = "", content_type: str = "", endpoint: str = ""):
        self.bucket, self.key, self.etag, self.endpoint = bucket, key, etag, endpoint
        self.name = name or key
        self.size = size
        self.content_type = content_type

    def _get(self, offset: int = 0, length: int | None = None):
        headers = {"If-Match": f'"{self.etag}"'} if self.etag else None
        try:
            return minio_client(self.endpoint).get_object(
                self.bucket, self.key, offset=offset, length=length or 0, request_headers=headers)
        except S3Error as exc:
            if exc.code in _GONE:
                raise RenderError(f"The object changed or was removed while it was read ({exc.code}).") from exc
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
        return {"bucket": self.bucket, "key": self.key, "etag": self.etag, "endpoint": self.endpoint}


def source_at(location: dict, *, size: int | None = None, name: str = "") -> ObjectSource:
    """The source a payload's ``source`` location names (page requests, full views)."""
    return ObjectSource(location["bucket"], location["key"], etag=location.get("etag", ""),
                        endpoint=location.get("endpoint", ""), size=size, name=name)
