"""Settings for the test suite: the real services, faster hashing."""

import os

# The suite is local work by definition; subprocesses it starts inherit the flag.
os.environ.setdefault("PIPELENS_DEVELOPMENT", "1")

from .base import *  # noqa: E402, F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Test databases are created per run; connections must not outlive a test.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
# One test database per pytest process, so that two suites running on one
# machine (two developers, or a developer and a benchmark) never share or
# drop each other's database. Subprocess fixtures read the real name from
# connection.settings_dict.
DATABASES["default"]["TEST"] = {"NAME": f"test_pipelens_{os.getpid()}"}  # noqa: F405
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
# Keep the suite's pushes apart from a `make run` sharing the same Redis.
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = "pipelens-test"  # noqa: F405
# Render tasks queued by tests go to their own queue, never to a `make run` worker's.
RENDER_QUEUE = env("RENDER_QUEUE", default="render-test")  # noqa: F405
# Recipes are on in the test suite, on a queue of their own (a fixture overrides it per test).
RECIPES_ENABLED = env.bool("RECIPES_ENABLED", default=True)  # noqa: F405
SANDBOX_QUEUE = env("SANDBOX_QUEUE", default="sandbox-test")  # noqa: F405
# Login counters: one private cache per test process (tests/conftest.py clears it per test).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Buckets made by tests publish through MinIO's test target to a topic of
# their own (deploy/local/minio.sh), never to the topic `make run` consumes;
# the session creates it and deletes it afterwards (tests/conftest.py).
MINIO_KAFKA_TOPIC = env("MINIO_TEST_KAFKA_TOPIC", default="pipelens-test-events")  # noqa: F405
MINIO_NOTIFY_ARN = env("MINIO_TEST_NOTIFY_ARN", default="arn:minio:sqs::PIPELENSTEST:kafka")  # noqa: F405
# Reconciliation sweeps run only in the tests about them (tests/runs/test_reconcile.py,
# tests/streaming/ingest/test_reconcile_faults.py): elsewhere a sweep would add
# artifacts and IngestErrors that tests of the event path alone do not expect.
RECONCILE_ENABLED = env.bool("RECONCILE_ENABLED", default=False)  # noqa: F405
# The consumer's lifecycle jobs (idle runs, Kubeflow polling) run only in the tests
# that call them (tests/runs/test_lifecycle.py): elsewhere a run made by a factory
# would turn idle under a test that looks at it.
RUN_LIFECYCLE_TICK_S = env.float("RUN_LIFECYCLE_TICK_S", default=86400.0)  # noqa: F405
KFP_POLL_S = env.float("KFP_POLL_S", default=86400.0)  # noqa: F405
