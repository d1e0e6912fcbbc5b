# shellcheck shell=bash
# MinIO built from source with `go install` (pinned), publishing bucket events
# to Kafka topic $MINIO_KAFKA_TOPIC via notification target PIPELENS.
# Sourced by services.sh (needs common.sh). Start it after Kafka.

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_BIN="$BIN_DIR/minio"
MINIO_DATA="$LOCAL/minio/data"
MINIO_QUEUE="$LOCAL/minio/queue"     # events wait here while Kafka is down
MINIO_PIDFILE="$RUN_DIR/minio.pid"
MINIO_LOG="$LOG_DIR/minio.log"

minio_installed() { [[ -x "$MINIO_BIN" ]]; }

minio_install() {
    mkdir -p "$MINIO_DATA" "$MINIO_QUEUE"
    minio_installed && return 0
    local log="$LOG_DIR/install-minio.log" i go=""
    # A build started elsewhere (same module path) may be running: wait for it
    # instead of compiling MinIO twice on a small machine.
    for ((i = 0; i < 3600; i++)); do
        pgrep -f "go install github.com/minio/minio@" >/dev/null || break
        ((i % 60 == 0)) && warn "minio: waiting for a running 'go install github.com/minio/minio' to finish"
        sleep 1
    done
    minio_installed && return 0
    if command -v go >/dev/null; then
        go="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
        go=/usr/local/go/bin/go
    else
        die "minio: Go is not installed; install Go >= 1.21 (it fetches the toolchain MinIO needs through the module proxy), or build $MINIO_BIN yourself"
    fi
    # GOTOOLCHAIN=auto lets an older Go download the toolchain MinIO's go.mod asks for.
    GOBIN="$BIN_DIR" GOTOOLCHAIN=auto "$go" install "github.com/minio/minio@$MINIO_VERSION" >>"$log" 2>&1 ||
        { tail_log "$log"; die "minio: go install github.com/minio/minio@$MINIO_VERSION failed"; }
    minio_installed || die "minio: go install succeeded but $MINIO_BIN is missing"
}

minio_running() { pid_alive "$MINIO_PIDFILE"; }

minio_health() { curl -sf -o /dev/null --max-time 3 "http://127.0.0.1:$MINIO_PORT/minio/health/ready"; }

minio_up() {
    if minio_running && minio_health; then
        say "minio     running  127.0.0.1:$MINIO_PORT"
        return 0
    fi
    if ! minio_running; then
        rm -f "$MINIO_PIDFILE"
        port_open "$MINIO_PORT" && die "minio: port $MINIO_PORT is already taken by another process (set PIPELENS_MINIO_PORT)"
        mkdir -p "$MINIO_DATA" "$MINIO_QUEUE"
        # The queue dir keeps events while Kafka is down, but MinIO then sends
        # them from the queue only every 3 s (retryInterval in its
        # internal/store): PIPELENS_MINIO_QUEUE_DIR=off trades that durability
        # for latency (docs/local-services.md).
        local queue_env=("MINIO_NOTIFY_KAFKA_QUEUE_DIR_$MINIO_NOTIFY_ID=$MINIO_QUEUE")
        [[ "${PIPELENS_MINIO_QUEUE_DIR:-on}" == off ]] && queue_env=()
        env MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
            "MINIO_NOTIFY_KAFKA_ENABLE_$MINIO_NOTIFY_ID=on" \
            "MINIO_NOTIFY_KAFKA_BROKERS_$MINIO_NOTIFY_ID=127.0.0.1:$KAFKA_PORT" \
            "MINIO_NOTIFY_KAFKA_TOPIC_$MINIO_NOTIFY_ID=$MINIO_KAFKA_TOPIC" \
            "${queue_env[@]}" \
            MINIO_API_SYNC_EVENTS=on MINIO_BROWSER=off MINIO_UPDATE=off \
            setsid "$MINIO_BIN" server "$MINIO_DATA" --anonymous \
            --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" \
            </dev/null >>"$MINIO_LOG" 2>&1 9>&- &
        echo $! >"$MINIO_PIDFILE"
    fi
    wait_healthy minio minio_health "$MINIO_PIDFILE" "$MINIO_LOG"
    say "minio     started  127.0.0.1:$MINIO_PORT"
}

minio_down() {
    if minio_running; then
        stop_pidfile minio "$MINIO_PIDFILE" 30
        say "minio     stopped"
    else
        rm -f "$MINIO_PIDFILE"
        say "minio     not running"
    fi
}

minio_status() {
    if minio_running && minio_health; then
        say "minio     up       127.0.0.1:$MINIO_PORT  pid $(pid_of "$MINIO_PIDFILE")  log $MINIO_LOG"
    elif minio_running; then
        say "minio     UNHEALTHY (running, not ready)  log $MINIO_LOG"
        return 1
    else
        say "minio     down"
        return 1
    fi
}

# After minio_down: every bucket and every queued event.
minio_purge() {
    minio_running && die "minio: still running; run 'services.sh down minio' first"
    rm -rf -- "$MINIO_DATA" "$MINIO_QUEUE"
    say "minio     purged"
}
