"""Settings shared by every environment; see docs/configuration.md.

Fail closed: without ``PIPELENS_DEVELOPMENT=1`` these settings have no
default secret and ``DEBUG`` is off, so a process started without
``DJANGO_SETTINGS_MODULE`` (which falls back to this module) cannot serve
with a published signing key or tracebacks. ``make run``, ``make test`` and
``make bench`` set the flag (deploy/local/with-env.sh); then the defaults
serve local work against the services ``deploy/local/services.sh`` starts.
Production (``production.py``) requires every secret and refuses the flag.
"""

import ipaddress
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

# Local work only: unlocks the development defaults below (docs/security.md).
DEVELOPMENT = env.bool("PIPELENS_DEVELOPMENT", default=False)
DEVELOPMENT_SECRET_KEY = "pipelens-local-development-key-not-for-production"


def _development_default(name: str, value: str) -> str:
    """``value`` for local work; outside it the variable is required."""
    if DEVELOPMENT:
        return env(name, default=value)
    found = env(name, default="")
    if not found:
        raise ImproperlyConfigured(
            f"{name} is not set. Set it, or set PIPELENS_DEVELOPMENT=1 for local work "
            f"(make run and make test do); see docs/configuration.md."
        )
    return found


SECRET_KEY = _development_default("DJANGO_SECRET_KEY", DEVELOPMENT_SECRET_KEY)
if SECRET_KEY == DEVELOPMENT_SECRET_KEY and not DEVELOPMENT:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY is the published development key; set a secret one.")
DEBUG = env.bool("DJANGO_DEBUG", default=DEVELOPMENT)
if DEBUG and not DEVELOPMENT:
    raise ImproperlyConfigured(
        "DJANGO_DEBUG=true shows tracebacks to users; it needs PIPELENS_DEVELOPMENT=1."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "runs",
    "streaming",
    "axes",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics are answered here, before the host check, the HTTPS
    # redirect and the login machinery (vizsite/probes.py says why).
    "vizsite.probes.probe_middleware",
    # The web-app origin's document fetch (/internal/webapp/<token>), for the same reasons
    # (vizsite/internal.py).
    "vizsite.internal.internal_middleware",
    "django.middleware.security.SecurityMiddleware",
    # A strict Content-Security-Policy on every portal response (vizsite/csp.py); near the
    # top, so responses made by the middleware below (400, 403, redirects) carry it too.
    "vizsite.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # django-axes wants to be last: it turns a lockout into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "vizsite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = None
ASGI_APPLICATION = "vizsite.asgi.application"

DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://pipelens:pipelens@127.0.0.1:54329/pipelens"),
}
# Persistent connections: the consumer and daphne hold one each; health is
# checked before reuse so a restarted PostgreSQL does not poison the process.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:63799/0")
# Shared by every process: login throttling counters (vizsite/accounts.py).
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env("CACHE_URL", default=REDIS_URL.rsplit("/", 1)[0] + "/2"),
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", default="pipelens"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Under daphne in development, serve static files straight from the apps.
WHITENOISE_USE_FINDERS = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# --- Portal: accounts, sessions, live pushes (docs/portal.md) ---------------
# django-axes: its backend goes FIRST (axes/backends.py: "use this class as the
# first item") so it vetoes a locked-out login before any backend checks the
# password; its middleware goes last (above).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Lock a username from one address after this many failures, for this long.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = __import__("datetime").timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False
# The client address, believing TRUSTED_PROXY_COUNT reverse proxies in front of
# daphne (0: the socket peer is the client). vizsite/accounts.py; docs/security.md#logins.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
AXES_CLIENT_IP_CALLABLE = "vizsite.accounts.client_ip"
# Failed logins counted per address (any username) and per username (any
# address) in this window; past either limit, attempts are refused until it
# ends. The per-username limit spares browsers that logged in to the account
# before (a signed cookie), so a stranger cannot lock an admin out.
LOGIN_THROTTLE_WINDOW_S = env.int("LOGIN_THROTTLE_WINDOW_S", default=15 * 60)
LOGIN_MAX_FAILURES_PER_ADDRESS = env.int("LOGIN_MAX_FAILURES_PER_ADDRESS", default=30)
LOGIN_MAX_FAILURES_PER_USERNAME = env.int("LOGIN_MAX_FAILURES_PER_USERNAME", default=20)
LOGIN_KNOWN_DEVICE_MAX_AGE_S = env.int("LOGIN_KNOWN_DEVICE_MAX_AGE_S", default=365 * 24 * 3600)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True  # no page script reads it; forms carry the token
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "django.views.csrf.csrf_failure"

# Channels over Redis. The pub/sub layer sends a group message once per
# process instead of once per member; docs/performance.md has the numbers
# that chose it (bench/fanout.py). CHANNEL_LAYER=core selects the other one.
_CHANNEL_BACKENDS = {
    "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
    "core": "channels_redis.core.RedisChannelLayer",
}
CHANNEL_LAYER = env("CHANNEL_LAYER", default="pubsub")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": _CHANNEL_BACKENDS[CHANNEL_LAYER],
        "CONFIG": {"hosts": [REDIS_URL], "prefix": env("CHANNEL_LAYER_PREFIX", default="pipelens")},
    },
}
# A push carries the changed artifacts' states for batches of up to this many
# artifacts; larger batches (a consumer catching up) push run summaries
# marked partial, and the pages refetch (streaming/live/broadcast.py).
BROADCAST_MAX_ARTIFACTS = env.int("BROADCAST_MAX_ARTIFACTS", default=200)
# Open sockets check their access again this often (a revoked grant or ended
# session is also announced at once; this bounds what a lost announcement costs),
# and are closed after SOCKET_MAX_AGE_S so that no socket outlives its checks for
# long; the page reconnects, and the connect checks everything again.
SOCKET_ACCESS_RECHECK_S = env.float("SOCKET_ACCESS_RECHECK_S", default=60.0)
SOCKET_MAX_AGE_S = env.float("SOCKET_MAX_AGE_S", default=3600.0)
# Runs per page in the runs list.
RUNS_PAGE_SIZE = env.int("RUNS_PAGE_SIZE", default=50)
# Metric columns the runs list shows (KFP mlpipeline-metrics names, sorted).
RUNS_LIST_METRIC_COLUMNS = env.int("RUNS_LIST_METRIC_COLUMNS", default=8)
# A run page renders this many previews inline; the rest load as they scroll
# into view (a 1,000-artifact page then renders in well under 200 ms).
RUN_PAGE_INLINE_PREVIEWS = env.int("RUN_PAGE_INLINE_PREVIEWS", default=30)
# Bytes per chunk when a download is streamed from object storage.
DOWNLOAD_CHUNK_BYTES = env.int("DOWNLOAD_CHUNK_BYTES", default=256 * 1024)

# --- Kafka (streaming/ingest/kafka_config.py) -------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:19092")
KAFKA_CONSUMER_GROUP = env("KAFKA_CONSUMER_GROUP", default="pipelens-ingest")
# Upper bound of messages stored in one database transaction.
KAFKA_BATCH_SIZE = env.int("KAFKA_BATCH_SIZE", default=2000)
# How long one consume() call waits to fill a batch, in seconds.
KAFKA_BATCH_TIMEOUT_S = env.float("KAFKA_BATCH_TIMEOUT_S", default=0.05)
# How often the consumer re-reads the enabled KafkaTopic rows, in seconds.
KAFKA_TOPIC_REFRESH_S = env.float("KAFKA_TOPIC_REFRESH_S", default=5.0)
# IngestError rows (each with its raw message, up to 1 MiB) are kept this long;
# the consumer prunes older ones once per interval (manage.py prune_ingest_errors too).
INGEST_ERROR_RETENTION_DAYS = env.int("INGEST_ERROR_RETENTION_DAYS", default=30)
INGEST_ERROR_PRUNE_INTERVAL_S = env.float("INGEST_ERROR_PRUNE_INTERVAL_S", default=3600.0)

# --- The console's health page (docs/operations.md#health) --------------------------
# Each consume_events process writes a heartbeat this often, and counts as alive
# while its last one is younger than HEALTH_ALIVE_S; heartbeats and per-minute
# event counts older than HEALTH_KEEP_S are pruned by the consumer.
HEALTH_HEARTBEAT_S = env.float("HEALTH_HEARTBEAT_S", default=10.0)
HEALTH_ALIVE_S = env.float("HEALTH_ALIVE_S", default=30.0)
HEALTH_KEEP_S = env.float("HEALTH_KEEP_S", default=86400.0)
# How often the consumer looks for ingest errors staff asked to retry.
INGEST_RETRY_POLL_S = env.float("INGEST_RETRY_POLL_S", default=2.0)
# The page reads the Celery queues' lengths from Redis with this timeout.
HEALTH_QUEUE_TIMEOUT_S = env.float("HEALTH_QUEUE_TIMEOUT_S", default=0.3)

# --- Reconciliation (runs/services/reconcile.py, docs/reconcile.md) -------------------
# The bucket is the source of truth, events the fast path: the consumer lists
# the prefixes of runs active within RECONCILE_RECENT_WINDOW_S every
# RECONCILE_RECENT_INTERVAL_S, every followed bucket whole every
# RECONCILE_FULL_INTERVAL_S, and whole after any gap it can see in the stream.
RECONCILE_ENABLED = env.bool("RECONCILE_ENABLED", default=True)
RECONCILE_RECENT_INTERVAL_S = env.float("RECONCILE_RECENT_INTERVAL_S", default=60.0)
RECONCILE_RECENT_WINDOW_S = env.float("RECONCILE_RECENT_WINDOW_S", default=3600.0)
# At most this many of a bucket's most recently active runs are listed per recent pass.
RECONCILE_RECENT_MAX_RUNS = env.int("RECONCILE_RECENT_MAX_RUNS", default=100)
RECONCILE_FULL_INTERVAL_S = env.float("RECONCILE_FULL_INTERVAL_S", default=86400.0)
# A whole-bucket sweep that failed (store unreachable, listing refused) is retried after this long.
RECONCILE_RETRY_S = env.float("RECONCILE_RETRY_S", default=300.0)
# Keys compared with the database per transaction; memory grows with it, not with the bucket.
RECONCILE_PAGE_SIZE = env.int("RECONCILE_PAGE_SIZE", default=1000)
# Finished sweeps kept per bucket for the record (older rows are pruned).
RECONCILE_HISTORY = env.int("RECONCILE_HISTORY", default=50)

# --- Run lifecycle (runs/services/lifecycle.py, docs/portal.md#run-status) ----
# A run (and a step) with no event for this long turns from active to idle.
RUN_IDLE_AFTER_S = env.float("RUN_IDLE_AFTER_S", default=300.0)
# How often the lifecycle upkeep runs (idle runs, ended KFP v1 steps).
RUN_LIFECYCLE_TICK_S = env.float("RUN_LIFECYCLE_TICK_S", default=15.0)
# A Kubeflow Pipelines API (e.g. http://ml-pipeline.kubeflow:8888); empty: no polling.
KFP_API_URL = env("KFP_API_URL", default="")
# Bearer token for that API (a service account token); never logged.
KFP_API_TOKEN = env("KFP_API_TOKEN", default="")
# How often unfinished KFP v2 runs are polled, the per-request timeout, how far
# back a run's last event may be to still be polled, and most runs per poll.
KFP_POLL_S = env.float("KFP_POLL_S", default=30.0)
KFP_TIMEOUT_S = env.float("KFP_TIMEOUT_S", default=5.0)
KFP_POLL_MAX_AGE_S = env.float("KFP_POLL_MAX_AGE_S", default=86400.0)
KFP_POLL_MAX_RUNS = env.int("KFP_POLL_MAX_RUNS", default=200)

# --- MinIO / S3 ------------------------------------------------------------
MINIO_ENDPOINT = env("MINIO_ENDPOINT", default="127.0.0.1:19000")
MINIO_ACCESS_KEY = _development_default("MINIO_ACCESS_KEY", "pipelens")
MINIO_SECRET_KEY = _development_default("MINIO_SECRET_KEY", "pipelens-secret")
MINIO_SECURE = env.bool("MINIO_SECURE", default=False)
# Object stores by alias: a Bucket names one (``Bucket.store``), never an address,
# so nobody editing a bucket in the admin can point Pipelens' credentials at a
# host of their choosing (docs/security.md). "default" is the MINIO_* store;
# PIPELENS_STORES=a,b adds PIPELENS_STORE_A_ENDPOINT, _ACCESS_KEY, _SECRET_KEY, _SECURE.
# Each store has a ``kind``: "minio" (S3 API with MinIO's bucket notifications,
# the default) or "seaweedfs" (its filer publishes to Kafka, configured in the
# filer's notification.toml; docs/stores.md). _KIND sets it for the aliases.
OBJECT_STORES = {
    "default": {
        "endpoint": MINIO_ENDPOINT,
        "access_key": MINIO_ACCESS_KEY,
        "secret_key": MINIO_SECRET_KEY,
        "secure": MINIO_SECURE,
        "kind": env("MINIO_STORE_KIND", default="minio"),
    },
}
for _alias in env.list("PIPELENS_STORES", default=[]):
    _prefix = f"PIPELENS_STORE_{_alias.upper()}_"
    OBJECT_STORES[_alias] = {
        "endpoint": env(_prefix + "ENDPOINT"),
        "access_key": env(_prefix + "ACCESS_KEY"),
        "secret_key": env(_prefix + "SECRET_KEY"),
        "secure": env.bool(_prefix + "SECURE", default=False),
        "kind": env(_prefix + "KIND", default="minio"),
    }
# SeaweedFS (Kubeflow Pipelines' default store since 2.15): SEAWEEDFS_ENDPOINT
# (its S3 gateway) adds the "seaweedfs" store; deploy/local sets it.
SEAWEEDFS_ENDPOINT = env("SEAWEEDFS_ENDPOINT", default="")
if SEAWEEDFS_ENDPOINT and "seaweedfs" not in OBJECT_STORES:
    OBJECT_STORES["seaweedfs"] = {
        "endpoint": SEAWEEDFS_ENDPOINT,
        "access_key": _development_default("SEAWEEDFS_ACCESS_KEY", "pipelens"),
        "secret_key": _development_default("SEAWEEDFS_SECRET_KEY", "pipelens-secret"),
        "secure": env.bool("SEAWEEDFS_SECURE", default=False),
        "kind": "seaweedfs",
    }
for _alias, _store in OBJECT_STORES.items():
    if _store["kind"] not in ("minio", "seaweedfs"):
        raise ImproperlyConfigured(
            f"object store {_alias!r}: kind {_store['kind']!r} is not minio or seaweedfs"
        )
# The topic the SeaweedFS filer publishes to (its notification.toml names it):
# buckets of a "seaweedfs" store are registered on it.
SEAWEEDFS_KAFKA_TOPIC = env("SEAWEEDFS_KAFKA_TOPIC", default="seaweedfs-events")
MINIO_KAFKA_TOPIC = env("MINIO_KAFKA_TOPIC", default="minio-events")
# The notification target MinIO was started with (MINIO_NOTIFY_KAFKA_*_PIPELENS).
MINIO_NOTIFY_ARN = env("MINIO_NOTIFY_ARN", default="arn:minio:sqs::PIPELENS:kafka")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"kafka": {"level": "WARNING"}},
}

# --- Celery and rendering (runs/tasks.py, runs/rendering/; docs/viewers.md) ----
# Redis database 1 by default, so the broker's keys stay apart from the channel layer's.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL.rsplit("/", 1)[0] + "/1")
CELERY_TASK_IGNORE_RESULT = True  # rendition state lives in the database, not a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Seconds before a render is warned (soft) and then killed (hard).
RENDER_SOFT_TIME_LIMIT_S = env.int("RENDER_SOFT_TIME_LIMIT_S", default=120)
RENDER_HARD_TIME_LIMIT_S = env.int("RENDER_HARD_TIME_LIMIT_S", default=150)
# A message taken by a worker that died unannounced goes back to the queue after
# this many seconds; it must exceed the hard limit or long renders run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=RENDER_HARD_TIME_LIMIT_S + 60),
    # Workers look for such messages every interval × throttle seconds
    # (kombu's defaults: 10 × 10 = 100 s).
    "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL_S", default=10),
    "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
}
RENDER_QUEUE = env("RENDER_QUEUE", default="render")
# Retries (with exponential back-off from RENDER_RETRY_BACKOFF_S) when object storage fails.
RENDER_MAX_RETRIES = env.int("RENDER_MAX_RETRIES", default=4)
RENDER_RETRY_BACKOFF_S = env.float("RENDER_RETRY_BACKOFF_S", default=2.0)
# A rendition claimed this often without finishing (the worker kept dying) is failed.
RENDER_MAX_ATTEMPTS = env.int("RENDER_MAX_ATTEMPTS", default=6)
# Address-space limit (RLIMIT_AS) of each render pool process, set when the process
# starts (vizsite/celery.py): one hostile file then ends as a MemoryError (a failed
# rendition) instead of taking the machine's memory. 0: no limit.
RENDER_WORKER_MAX_MEMORY_MB = env.int("RENDER_WORKER_MAX_MEMORY_MB", default=1024)
# A pool process whose resident memory exceeds this after a task is replaced by a
# fresh one (Celery's worker_max_memory_per_child, in KiB): memory a large render
# left fragmented goes back to the system. Default: half the limit above.
CELERY_WORKER_MAX_MEMORY_PER_CHILD = (
    env.int("RENDER_WORKER_RECYCLE_MEMORY_MB", default=RENDER_WORKER_MAX_MEMORY_MB // 2) * 1024 or None
)
# Portal-owned bucket for thumbnails and extracted files; never registered for events.
PREVIEW_BUCKET = env("PREVIEW_BUCKET", default="pipelens-previews")
# Images: larger images are refused (decompression bombs), never decoded.
MAX_IMAGE_PIXELS = env.int("MAX_IMAGE_PIXELS", default=64_000_000)
IMAGE_MAX_BYTES = env.int("IMAGE_MAX_BYTES", default=100 * 1024 * 1024)
THUMBNAIL_SIZE = env.int("THUMBNAIL_SIZE", default=480)
# Pillow formats an image may be decoded as (Image.open(formats=...)). Pillow knows
# dozens, some with old, rarely audited decoders (EPS runs Ghostscript); a ".png"
# name reaches whichever one the bytes match. TIFF (libtiff) is off by default.
IMAGE_FORMATS = env.list("IMAGE_FORMATS", default=["PNG", "JPEG", "GIF", "WEBP", "BMP"])
# KFP .tgz outputs are read in memory: caps on the archive, its members, each member.
ARCHIVE_MAX_BYTES = env.int("ARCHIVE_MAX_BYTES", default=64 * 1024 * 1024)
ARCHIVE_MAX_MEMBERS = env.int("ARCHIVE_MAX_MEMBERS", default=4)
ARCHIVE_MAX_MEMBER_BYTES = env.int("ARCHIVE_MAX_MEMBER_BYTES", default=64 * 1024 * 1024)
# Decompressed bytes an archive may produce in all (headers, padding and files).
# Counted as they are unpacked: gzip reaches ~1000:1, so without a count a few MB
# of upload become gigabytes in the worker (issue 8, docs/security.md).
ARCHIVE_MAX_UNPACKED_BYTES = env.int(
    "ARCHIVE_MAX_UNPACKED_BYTES", default=ARCHIVE_MAX_MEMBER_BYTES + 1024 * 1024
)
# Tables: rows per page, how much is sampled for column types, the row-offset
# index granularity, and up to where sorting (which reads the whole file) is offered.
TABLE_PAGE_ROWS = env.int("TABLE_PAGE_ROWS", default=50)
TABLE_SAMPLE_BYTES = env.int("TABLE_SAMPLE_BYTES", default=256 * 1024)
TABLE_MAX_COLUMNS = env.int("TABLE_MAX_COLUMNS", default=200)
TABLE_MAX_CELL_CHARS = env.int("TABLE_MAX_CELL_CHARS", default=2000)
TABLE_INDEX_CHUNK_BYTES = env.int("TABLE_INDEX_CHUNK_BYTES", default=512 * 1024)
TABLE_SORT_MAX_BYTES = env.int("TABLE_SORT_MAX_BYTES", default=16 * 1024 * 1024)
# Longest line a table may have. A line is held whole while it is split, so a file
# without newlines would otherwise be held (and copied) whole.
TABLE_MAX_LINE_BYTES = env.int("TABLE_MAX_LINE_BYTES", default=4 * 1024 * 1024)
# Parquet (runs/rendering/parquet.py): what a file's footer may declare before pyarrow reads it.
# A page read decodes one row group in the portal process, so the row-group cap bounds the
# memory of a page read (times VIEWER_MAX_CONCURRENT_READS).
PARQUET_MAX_FOOTER_BYTES = env.int("PARQUET_MAX_FOOTER_BYTES", default=8 * 1024 * 1024)
PARQUET_MAX_ROW_GROUP_BYTES = env.int("PARQUET_MAX_ROW_GROUP_BYTES", default=64 * 1024 * 1024)
PARQUET_MAX_ROW_GROUPS = env.int("PARQUET_MAX_ROW_GROUPS", default=10_000)
# Text files read whole (markdown, metadata, metrics, progress, chart CSVs, HTML).
TEXT_MAX_BYTES = env.int("TEXT_MAX_BYTES", default=8 * 1024 * 1024)
# JSON files (KFP metadata, metrics, progress): parsed objects take up to ~25 times
# the text, so JSON gets a smaller budget than other text.
JSON_MAX_BYTES = env.int("JSON_MAX_BYTES", default=4 * 1024 * 1024)
# Markdown: markdown-it-py is slow and superlinear on hostile input (256 KiB of
# unclosed "![" take ~9 s), so Markdown gets its own, smaller budget.
MARKDOWN_MAX_BYTES = env.int("MARKDOWN_MAX_BYTES", default=256 * 1024)
# Remote images in Markdown reveal who reads a report, and when, to their host:
# shown as links unless allowed (then the portal's CSP allows https: images too).
MARKDOWN_ALLOW_REMOTE_IMAGES = env.bool("MARKDOWN_ALLOW_REMOTE_IMAGES", default=False)
# Logs show their last TEXT_TAIL_BYTES; "load earlier" pages back by the same amount.
TEXT_TAIL_BYTES = env.int("TEXT_TAIL_BYTES", default=64 * 1024)
# ROC curves longer than this are downsampled (shape-preserving) for the browser.
ROC_MAX_POINTS = env.int("ROC_MAX_POINTS", default=500)
# The compare page overlays up to 50 runs' ROC curves in one chart: each is cut
# again (LTTB) to this many points so the chart paints within a second (docs/compare.md).
COMPARE_ROC_POINTS = env.int("COMPARE_ROC_POINTS", default=250)
# A merged table sorted on the server merges the runs' sorted copies from their first
# row: sorted pages go this deep at most (a run's own table pages deeper).
COMPARE_MERGED_SORT_MAX_ROWS = env.int("COMPARE_MERGED_SORT_MAX_ROWS", default=5000)
CONFUSION_MATRIX_MAX_LABELS = env.int("CONFUSION_MATRIX_MAX_LABELS", default=100)
# KFP metadata: outputs per file, objects a wildcard source may concatenate.
KFP_METADATA_MAX_OUTPUTS = env.int("KFP_METADATA_MAX_OUTPUTS", default=20)
KFP_SOURCE_MAX_OBJECTS = env.int("KFP_SOURCE_MAX_OBJECTS", default=50)
# A wildcard source lists at most this many keys under its prefix (a bound on
# the work one metadata file can cause in another bucket).
KFP_SOURCE_MAX_LISTED = env.int("KFP_SOURCE_MAX_LISTED", default=10_000)
# Web-app (HTML) outputs are served only from this separate origin, through
# signed URLs valid for WEBAPP_URL_MAX_AGE_S seconds (docs/security.md).
# Use another host name than the portal's (not only another port): browsers send
# cookies by host, so a different site never receives the portal's session.
WEBAPP_ORIGIN = env("WEBAPP_ORIGIN", default="http://localhost:8001")
WEBAPP_URL_MAX_AGE_S = env.int("WEBAPP_URL_MAX_AGE_S", default=300)
# The web-app origin has no database or object store access (docs/deploy.md#network-policy):
# it fetches each document from the portal's web processes at
# WEBAPP_PORTAL_URL/internal/webapp/<token> (vizsite/internal.py), which check the same
# signed token. Inside a cluster: the portal's Service (http://web:8000); locally the
# portal's daphne. Answers are bounded by TEXT_MAX_BYTES; a portal that does not answer
# within WEBAPP_PORTAL_TIMEOUT_S seconds gets the browser a 504 page.
WEBAPP_PORTAL_URL = env("WEBAPP_PORTAL_URL", default="http://127.0.0.1:8000")
WEBAPP_PORTAL_TIMEOUT_S = env.float("WEBAPP_PORTAL_TIMEOUT_S", default=10.0)
# Content-Security-Policy of web-app documents (runs/webapp.py), besides the
# "sandbox allow-scripts" always sent. The default lets a self-contained document
# run its inline scripts and styles but load nothing from, and send nothing to, the
# network (no beacons, no exfiltration, no tracking pixels). script-src 'self' lets it
# load the vendored Vega files the web-app origin itself serves (runs/webapp.py VENDOR;
# every other path there is a 404 or an HTML document, which nosniff refuses as a
# script). Relax it (e.g. add a CDN to script-src) only for pipelines you trust.
WEBAPP_CSP = env(
    "WEBAPP_CSP",
    default=(
        "default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval' data: blob:; "
        "style-src 'unsafe-inline' data: blob:; img-src data: blob:; font-src data:; media-src data: blob:; "
        "connect-src 'none'; form-action 'none'; base-uri 'none'"
    ),
)
# Viewer requests that read object storage in the portal process (table pages, log
# pages) at once per process; more answer 503 "busy, retry" at once instead of
# queueing behind each other (docs/viewers.md).
VIEWER_MAX_CONCURRENT_READS = env.int("VIEWER_MAX_CONCURRENT_READS", default=4)

# --- Probes and metrics (vizsite/probes.py; docs/operations.md#probes-and-metrics) ---
# Each /readyz check (database, Redis, Kafka, object stores; run in parallel) gives up
# after this many seconds, so the probe answers in about this long however many are down.
READINESS_TIMEOUT_S = env.float("READINESS_TIMEOUT_S", default=2.0)
# /metrics is served to these networks (CIDRs; the client address as for logins,
# TRUSTED_PROXY_COUNT) and to requests carrying "Authorization: Bearer <METRICS_TOKEN>".
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
METRICS_TOKEN = env("METRICS_TOKEN", default="")
for _network in METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"METRICS_ALLOWED_NETWORKS: {_network!r} is not a network ({_exc})."
        ) from None
if METRICS_TOKEN and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured("METRICS_TOKEN is shorter than 16 characters; use a long random one.")

# --- Recipes: user-supplied Python run in a sandbox (docs/recipes.md) -------------
# Off unless asked for: running code written by users is a decision per deployment
# (production settings keep it off; `make run` and the tests turn it on).
RECIPES_ENABLED = env.bool("RECIPES_ENABLED", default=False)
# Recipe runs have their own queue and worker process (`celery -A vizsite worker -Q
# sandbox`), so a slow or hostile recipe never delays the built-in previews.
SANDBOX_QUEUE = env("SANDBOX_QUEUE", default="sandbox")
# The sandbox's own virtualenv (pinned numpy, pandas, matplotlib; requirements-sandbox.txt),
# built by deploy/local/sandbox.sh outside the checkout (the sandbox user must reach it),
# which records its path in .local/sandbox-venv.path; the child sees it read-only and
# nothing of the project. Set SANDBOX_VENV in deployments.
_SANDBOX_VENV_PATH = BASE_DIR / ".local" / "sandbox-venv.path"
SANDBOX_VENV = env(
    "SANDBOX_VENV",
    default=_SANDBOX_VENV_PATH.read_text().strip()
    if _SANDBOX_VENV_PATH.exists()
    else "/opt/pipelens/sandbox",
)
# Without user/PID/network namespaces (bwrap cannot start) recipes are refused, unless
# this allows the weaker mode (rlimits, empty environment, unprivileged user, but the
# host's file system and network): the recipe pages then say so.
SANDBOX_ALLOW_WEAK = env.bool("SANDBOX_ALLOW_WEAK", default=False)
# The unprivileged user the sandbox runs as when the worker is root (root ignores
# RLIMIT_NPROC, so a fork bomb would not be stopped).
SANDBOX_UID = env.int("SANDBOX_UID", default=65534)
# Limits of one run (each defends against something: docs/recipes.md#limits).
SANDBOX_WALL_S = env.float("SANDBOX_WALL_S", default=30.0)
SANDBOX_CPU_S = env.int("SANDBOX_CPU_S", default=20)
SANDBOX_MEMORY_MB = env.int("SANDBOX_MEMORY_MB", default=1024)
SANDBOX_FILE_MB = env.int("SANDBOX_FILE_MB", default=64)
SANDBOX_TMP_MB = env.int("SANDBOX_TMP_MB", default=64)
SANDBOX_OPEN_FILES = env.int("SANDBOX_OPEN_FILES", default=64)
SANDBOX_PROCESSES = env.int("SANDBOX_PROCESSES", default=32)
SANDBOX_LOG_BYTES = env.int("SANDBOX_LOG_BYTES", default=32 * 1024)
SANDBOX_FLOOD_BYTES = env.int("SANDBOX_FLOOD_BYTES", default=4 * 1024 * 1024)
SANDBOX_RESULT_BYTES = env.int("SANDBOX_RESULT_BYTES", default=8 * 1024 * 1024)
# Largest artifact a recipe is given. The render worker reads it and sends it to the
# sandbox worker inside the job message (base64 in Celery's JSON, which the Redis transport
# base64-encodes again: about 1.8 times the bytes in Redis and in each worker's memory),
# since the sandbox worker may not reach the object store (runs/sandbox/task.py).
SANDBOX_INPUT_MAX_BYTES = env.int("SANDBOX_INPUT_MAX_BYTES", default=32 * 1024 * 1024)
