#!/usr/bin/env bash
# Local real services for Pipelens on 127.0.0.1 (see docs/local-services.md).
#
#   deploy/local/services.sh install|up|down|purge|status|env [postgres redis kafka minio seaweedfs]
#
# install  fetch/build/initialise what is missing (idempotent)
# up       install if needed, start what is not running, wait for health checks
# down     stop (reverse order)
# purge    stop, then delete the services' data (downloads and .local/log stay)
# status   one line per service; exit 1 if any is not healthy
# env      print `export` lines with the connection settings
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
. "$HERE/common.sh"
. "$HERE/postgres.sh"
. "$HERE/redis.sh"
. "$HERE/kafka.sh"
. "$HERE/minio.sh"
. "$HERE/seaweedfs.sh"

ALL=(postgres redis kafka minio seaweedfs)   # start order; MinIO and SeaweedFS need Kafka for events

usage() {
    warn "usage: $0 install|up|down|purge|status|env [${ALL[*]}]"
    exit 2
}

print_env() {
    local k v
    while IFS='=' read -r k v; do
        printf 'export %s=%q\n' "$k" "$v"
    done <<EOF
DATABASE_URL=postgres://$(urlencode "$PG_USER"):$(urlencode "$PG_PASSWORD")@127.0.0.1:$PG_PORT/$(urlencode "$PG_DB")
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
MINIO_ENDPOINT=127.0.0.1:$MINIO_PORT
MINIO_ACCESS_KEY=$MINIO_USER
MINIO_SECRET_KEY=$MINIO_PASSWORD
MINIO_KAFKA_TOPIC=$MINIO_KAFKA_TOPIC
MINIO_NOTIFY_ARN=$(minio_arn "$MINIO_NOTIFY_ID")
MINIO_TEST_KAFKA_TOPIC=$MINIO_TEST_KAFKA_TOPIC
MINIO_TEST_NOTIFY_ARN=$(minio_arn "$MINIO_TEST_NOTIFY_ID")
MINIO_BENCH_KAFKA_TOPIC=$MINIO_BENCH_KAFKA_TOPIC
MINIO_BENCH_NOTIFY_ARN=$(minio_arn "$MINIO_BENCH_NOTIFY_ID")
SEAWEEDFS_ENDPOINT=127.0.0.1:$SEAWEEDFS_S3_PORT
SEAWEEDFS_FILER_ENDPOINT=127.0.0.1:$SEAWEEDFS_FILER_PORT
SEAWEEDFS_ACCESS_KEY=$SEAWEEDFS_ACCESS_KEY
SEAWEEDFS_SECRET_KEY=$SEAWEEDFS_SECRET_KEY
SEAWEEDFS_KAFKA_TOPIC=$SEAWEEDFS_KAFKA_TOPIC
EOF
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1" svc rc=0 t0
    shift
    local services=("$@")
    [[ ${#services[@]} -gt 0 ]] || services=("${ALL[@]}")
    for svc in "${services[@]}"; do
        [[ " ${ALL[*]} " == *" $svc "* ]] || { warn "unknown service: $svc"; usage; }
    done
    # Keep the given services in start order, whatever order they were named in.
    local ordered=()
    for svc in "${ALL[@]}"; do
        [[ " ${services[*]} " == *" $svc "* ]] && ordered+=("$svc")
    done

    case "$cmd" in
        env)
            print_env
            return 0
            ;;
        install | up | down | purge | status) ;;
        *) usage ;;
    esac

    [[ $EUID -eq 0 ]] || die "run as root (PostgreSQL is started through runuser -u postgres)"

    # One install/up/down at a time: concurrent callers wait here. Daemons
    # are started with `9>&-` so that they do not inherit (and keep) the lock.
    if [[ "$cmd" != status ]]; then
        exec 9>"$RUN_DIR/services.lock"
        flock -w 1800 9 || die "another services.sh has held $RUN_DIR/services.lock for 30 minutes"
    fi

    case "$cmd" in
        install)
            for svc in "${ordered[@]}"; do
                t0=$SECONDS
                "${svc}_install"
                say "$(printf '%-9s' "$svc") installed ($((SECONDS - t0))s)"
            done
            ;;
        up)
            for svc in "${ordered[@]}"; do
                # A running service is never reinstalled underneath itself.
                if ! "${svc}_running" && ! "${svc}_installed"; then
                    t0=$SECONDS
                    "${svc}_install"
                    say "$(printf '%-9s' "$svc") installed ($((SECONDS - t0))s)"
                fi
                "${svc}_up"
            done
            ;;
        down | purge)
            local i
            for ((i = ${#ordered[@]} - 1; i >= 0; i--)); do
                "${ordered[i]}_down"
            done
            if [[ "$cmd" == purge ]]; then
                for svc in "${ordered[@]}"; do
                    "${svc}_purge"
                done
            fi
            ;;
        status)
            for svc in "${ordered[@]}"; do
                "${svc}_status" || rc=1
            done
            ;;
    esac
    return "$rc"
}

main "$@"
