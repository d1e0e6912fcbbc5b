"""The MinIO/S3 client: one place that knows how to reach object storage."""

from functools import lru_cache

from django.conf import settings
from minio import Minio


@lru_cache(maxsize=8)
def minio_client(endpoint: str = "") -> Minio:
    """A client for ``endpoint`` (empty: the MINIO_ENDPOINT setting). Thread-safe, cached."""
    return Minio(
        endpoint or settings.MINIO_ENDPOINT,
        access_key=settings.MINIO_ACCESS_KEY,
        secret_key=settings.MINIO_SECRET_KEY,
        secure=settings.MINIO_SECURE,
    )
