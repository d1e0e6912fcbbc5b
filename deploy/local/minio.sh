# shellcheck shell=bash
# MinIO built from source with `go install` (pinned), publishing bucket events
# to Kafka through three notification targets, one topic each: PIPELENS ->
# $MINIO_KAFKA_TOPIC (what `make run` consumes), PIPELENSTEST ->
# $MINIO_TEST_KAFKA_TOPIC (tests) and PIPELENSBENCH -> $MINIO_BENCH_KAFKA_TOPIC
# (benchmarks). A bucket publishes through the target its notification names.
# Sourced by services.sh (needs common.sh). Start it after Kafka.

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_BIN="$BIN_DIR/minio"
MINIO_DATA="$LOCAL/minio/data"
MINIO_QUEUE="$LOCAL/minio/queue"     # events wait here while Kafka is down
MINIO_PIDFILE="$RUN_DIR/minio.pid"
MINIO_LOG="$LOG_DIR/minio.log"
MINIO_TARGETS_FILE="$RUN_DIR/minio.targets"   # the targets the running MinIO was started with

# "ID=topic" per notification target (targets are fixed when MinIO starts).
minio_targets() {
    printf '%s\n' "$MINIO_NOTIFY_ID=$MINIO_KAFKA_TOPIC" "$MINIO_TEST_NOTIFY_ID=$MINIO_TEST_KAFKA_TOPIC" \
        "$MINIO_BENCH_NOTIFY_ID=$MINIO_BENCH_KAFKA_TOPIC"
}

# What the running MinIO was started with: its targets and whether it has a queue dir.
minio_started_with() {
    minio_targets
    echo "queue_dir=${PIPELENS_MINIO_QUEUE_DIR:-off}"
}

# A running MinIO started otherwise (an older script, other topic variables,
# another queue-dir setting) is left running, but said so: buckets naming a
# missing target fail to register ("ARN not found").
minio_check_targets() {
    [[ "$(cat "$MINIO_TARGETS_FILE" 2>/dev/null || true)" == "$(minio_started_with)" ]] && return 0
    warn "warning: minio is running with other notification targets or queue-dir setting than $(minio_started_with | tr '\n' ' ')"
    warn "         restart it to use them: bash deploy/local/services.sh down minio && bash deploy/local/services.sh up minio"
}

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
        minio_check_targets
        say "minio     running  127.0.0.1:$MINIO_PORT"
        return 0
    fi
    if ! minio_running; then
        rm -f "$MINIO_PIDFILE"
        port_open "$MINIO_PORT" && die "minio: port $MINIO_PORT is already taken by another process (set PIPELENS_MINIO_PORT)"
        mkdir -p "$MINIO_DATA" "$MINIO_QUEUE"
        # No queue dir by default (docs/reconcile.md): each event is sent as its
        # PUT completes, asynchronously, and the consumer's reconciliation finds
        # what MinIO drops while Kafka is down. Synchronous events without a
        # queue dir would hold every PUT while Kafka is down (measured: 100
        # PUTs took 100 s, one waited 32 s). With a queue dir
        # (PIPELENS_MINIO_QUEUE_DIR=on, events then synchronous: written to the
        # queue before the PUT returns) MinIO keeps those events but sends its
        # queue only every 3 s (retryInterval in its internal/store). Each
        # target queues in its own subdirectory of the queue dir.
        local target id topic target_env=() sync_events=off
        if [[ "${PIPELENS_MINIO_QUEUE_DIR:-off}" == on ]]; then sync_events=on; fi
        while IFS= read -r target; do
            id="${target%%=*}" topic="${target#*=}"
            target_env+=("MINIO_NOTIFY_KAFKA_ENABLE_$id=on" "MINIO_NOTIFY_KAFKA_BROKERS_$id=127.0.0.1:$KAFKA_PORT"
                "MINIO_NOTIFY_KAFKA_TOPIC_$id=$topic")
            if [[ "${PIPELENS_MINIO_QUEUE_DIR:-off}" == on ]]; then
                target_env+=("MINIO_NOTIFY_KAFKA_QUEUE_DIR_$id=$MINIO_QUEUE")
            fi
        done < <(minio_targets)
        env MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASSWORD" \
            "${target_env[@]}" \
            MINIO_API_SYNC_EVENTS="$sync_events" MINIO_BROWSER=off MINIO_UPDATE=off \
            setsid "$MINIO_BIN" server "$MINIO_DATA" --anonymous \
            --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$MINIO_CONSOLE_PORT" \
            </dev/null >>"$MINIO_LOG" 2>&1 9>&- &
        echo $! >"$MINIO_PIDFILE"
        minio_started_with >"$MINIO_TARGETS_FILE"
    fi
    wait_healthy minio minio_health "$MINIO_PIDFILE" "$MINIO_LOG"
    say "minio     started  127.0.0.1:$MINIO_PORT"
}

minio_down() {
    if minio_running; then
        stop_pidfile minio "$MINIO_PIDFILE" 30
        rm -f "$MINIO_TARGETS_FILE"
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
