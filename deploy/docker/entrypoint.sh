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
# The production settings read it: webapp and sandbox-worker start without credentials.
export PIPELENS_ROLE="$role"

bind="${PIPELENS_BIND:-0.0.0.0}"

# port NAME VALUE: VALUE when it is a port number, else stop with why. Kubernetes'
# service links set PIPELENS_WEB_PORT=tcp://10.0.0.1:8000 for a Service named
# pipelens-web (the manifests turn them off: enableServiceLinks: false).
port() {
    case "$2" in
        '' | *[!0-9]*)
            echo "pipelens: $1=$2 is not a port number (Kubernetes service links? set enableServiceLinks: false)" >&2
            exit 2
            ;;
    esac
    echo "$2"
}

# Prometheus multiprocess files (vizsite/metrics.py): the directory must exist before
# Django loads. A long-running role empties it first: figures of processes that ended
# (a container restarted in the same pod keeps its emptyDir) would be added up again.
# One-off commands (check-ready as an exec probe, manage, backfill) leave it alone,
# since they run beside the live process.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
    case "$role" in
        web | webapp | consume | worker | sandbox-worker)
            find "$PROMETHEUS_MULTIPROC_DIR" -maxdepth 1 -type f -name '*.db' -delete
            ;;
    esac
fi

case "$role" in
    web)
        web_port="$(port PIPELENS_WEB_PORT "${PIPELENS_WEB_PORT:-8000}")"
        exec daphne -b "$bind" -p "$web_port" "$@" vizsite.asgi:application
        ;;
    webapp)
        webapp_port="$(port PIPELENS_WEBAPP_PORT "${PIPELENS_WEBAPP_PORT:-8001}")"
        exec daphne -b "$bind" -p "$webapp_port" "$@" vizsite.webapp_asgi:application
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
