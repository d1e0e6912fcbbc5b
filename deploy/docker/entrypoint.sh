#!/bin/sh
# The image's entrypoint (/usr/local/bin/pipelens): the first argument names the
# role; the contract is at the top of deploy/docker/Containerfile and in
# docs/deploy.md ("The image"). Each role `exec`s its process, which becomes the
# container's PID 1: SIGTERM from the runtime reaches daphne, the consumer
# (graceful stop) and celery (warm shutdown) directly. No --proxy-headers for
# daphne: the portal reads X-Forwarded-For itself, trusting TRUSTED_PROXY_COUNT
# proxies (vizsite/accounts.py), and /metrics checks the real peer address.
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

bind="${PIPELENS_BIND:-0.0.0.0}"

# Prometheus multiprocess files (vizsite/metrics.py) need their directory.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

case "$role" in
    web)
        exec daphne -b "$bind" -p "${PIPELENS_WEB_PORT:-8000}" "$@" vizsite.asgi:application
        ;;
    webapp)
        exec daphne -b "$bind" -p "${PIPELENS_WEBAPP_PORT:-8001}" "$@" vizsite.webapp_asgi:application
        ;;
    consume)
        exec python manage.py consume_events "$@"
        ;;
    worker)
        exec celery -A vizsite worker -Q "${RENDER_QUEUE:-render}" -n "render@%h" \
            -c "${PIPELENS_RENDER_CONCURRENCY:-1}" --without-gossip --without-mingle \
            -l "${LOG_LEVEL:-INFO}" "$@"
        ;;
    sandbox-worker)
        exec celery -A vizsite worker -Q "${SANDBOX_QUEUE:-sandbox}" -n "sandbox@%h" \
            -c "${PIPELENS_SANDBOX_CONCURRENCY:-1}" --without-gossip --without-mingle \
            -l "${LOG_LEVEL:-INFO}" "$@"
        ;;
    migrate)
        exec python manage.py migrate --noinput "$@"
        ;;
    backfill)
        exec python manage.py backfill "$@"
        ;;
    check-ready)
        exec python manage.py check_ready "$@"
        ;;
    manage)
        exec python manage.py "$@"
        ;;
    help | --help | -h)
        sed -n '/^# Entrypoint contract/,/^# Runs as/p' /app/deploy/docker/Containerfile
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
