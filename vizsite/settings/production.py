"""Production settings: no defaults for secrets; passes ``check --deploy``."""

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()
if env.bool("PIPELENS_DEVELOPMENT", default=False):
    raise ImproperlyConfigured("PIPELENS_DEVELOPMENT=1 unlocks development defaults; unset it in production.")

_REQUIRED = (
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "MINIO_ACCESS_KEY",
    "MINIO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    # The sandbox origin for pipeline-written HTML: the local default
    # (localhost:8001) would be wrong, and unsafe if it were the portal's.
    "WEBAPP_ORIGIN",
)
# The web-app origin and the sandbox worker hold no credentials (docs/deploy.md#network-policy):
# they reach neither the database nor the object store and sign nothing, so their pods get no
# Secret. The image's entrypoint names the role (PIPELENS_ROLE); what these two would otherwise
# be required to have gets values that open nothing: a per-process random key, a database
# address nothing listens on (the discard port) and no store credentials.
CREDENTIAL_FREE_ROLES = ("webapp", "sandbox-worker")
if env.str("PIPELENS_ROLE", default="") in CREDENTIAL_FREE_ROLES:
    import os
    import secrets

    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("DATABASE_URL", "postgres://none@127.0.0.1:9/none")
    os.environ.setdefault("MINIO_ACCESS_KEY", "none")
    os.environ.setdefault("MINIO_SECRET_KEY", "none")
_missing = [name for name in _REQUIRED if not env.str(name, default="")]
if _missing:
    raise ImproperlyConfigured(f"Missing required environment variables: {', '.join(_missing)}")

# Checked above before base reads them, so the message names every missing one.
from .base import *  # noqa: E402, F403

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Production runs behind one reverse proxy (nginx, an ingress): believe its
# X-Forwarded-For entry for the client address (docs/security.md#logins).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
