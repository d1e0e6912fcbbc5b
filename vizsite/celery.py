"""The Celery app: Redis broker, one ``render`` queue (docs/viewers.md).

Configuration is read from Django settings named ``CELERY_*``. Start a worker
with ``celery -A vizsite worker -Q render`` (``make run`` does).

Each pool process limits its own address space when it starts
(RENDER_WORKER_MAX_MEMORY_MB, ``RLIMIT_AS``): a file that makes a decoder
allocate without bound then fails that one render with a MemoryError instead
of taking the machine's memory (docs/security.md). The limit is set
in the pool processes only (prefork), never in the main worker process that
holds the broker connection.
"""

import logging
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vizsite.settings.base")

app = Celery("vizsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger("pipelens.render")


def apply_memory_limit(megabytes: int) -> int | None:
    """Limit this process's address space to ``megabytes`` MiB (RLIMIT_AS, soft limit).

    Returns the limit in bytes, or None when ``megabytes`` is 0 (no limit).
    Never raises it above an existing hard limit.
    """
    import resource

    if megabytes <= 0:
        return None
    limit = megabytes * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    return limit


def _address_space_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@worker_process_init.connect
def limit_render_process_memory(**_kwargs) -> None:
    from django.conf import settings

    from vizsite.logs import log_event

    used = _address_space_bytes()
    limit = apply_memory_limit(settings.RENDER_WORKER_MAX_MEMORY_MB)
    if limit is None:
        return
    log_event(
        logger,
        "render_process_limit",
        pid=os.getpid(),
        RLIMIT_AS=f"{limit // 2**20}MiB",
        in_use=f"{used // 2**20}MiB",
    )
    if used and limit < used + 64 * 2**20:
        log_event(
            logger,
            "render_process_limit_too_low",
            level=logging.WARNING,
            pid=os.getpid(),
            RLIMIT_AS=f"{limit // 2**20}MiB",
            in_use=f"{used // 2**20}MiB",
        )
