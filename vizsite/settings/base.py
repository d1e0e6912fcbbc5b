"""Settings shared by every environment; see docs/configuration.md.

Defaults here serve local work against the services that
``deploy/local/services.sh`` starts. Production (``production.py``) removes the
defaults for secrets and refuses to start without them.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="pipelens-local-development-key-not-for-production")
DEBUG = env.bool("DJANGO_DEBUG", default=True)
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
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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
    "default": env.db(
        "DATABASE_URL", default="postgres://pipelens:pipelens@127.0.0.1:54329/pipelens"
    ),
}
# Persistent connections: the consumer and daphne hold one each; health is
# checked before reuse so a restarted PostgreSQL does not poison the process.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:63799/0")

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

# --- Kafka (streaming/kafka.py) -------------------------------------------
KAFKA_BOOTSTRAP_SERVERS = env("KAFKA_BOOTSTRAP_SERVERS", default="127.0.0.1:19092")
KAFKA_CONSUMER_GROUP = env("KAFKA_CONSUMER_GROUP", default="pipelens-ingest")
# Upper bound of messages stored in one database transaction.
KAFKA_BATCH_SIZE = env.int("KAFKA_BATCH_SIZE", default=2000)
# How long one consume() call waits to fill a batch, in seconds.
KAFKA_BATCH_TIMEOUT_S = env.float("KAFKA_BATCH_TIMEOUT_S", default=0.05)
# How often the consumer re-reads the enabled KafkaTopic rows, in seconds.
KAFKA_TOPIC_REFRESH_S = env.float("KAFKA_TOPIC_REFRESH_S", default=5.0)

# --- MinIO / S3 ------------------------------------------------------------
MINIO_ENDPOINT = env("MINIO_ENDPOINT", default="127.0.0.1:19000")
MINIO_ACCESS_KEY = env("MINIO_ACCESS_KEY", default="pipelens")
MINIO_SECRET_KEY = env("MINIO_SECRET_KEY", default="pipelens-secret")
MINIO_SECURE = env.bool("MINIO_SECURE", default=False)
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
