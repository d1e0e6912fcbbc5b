# shellcheck shell=bash
# SeaweedFS (Kubeflow Pipelines' default artifact store since 2.15), built
# from source (pinned) and run as one `weed server` process: master, volume,
# filer and S3 gateway on 127.0.0.1. Its S3 gateway has no bucket
# notifications; the filer publishes every metadata change (a protobuf
# filer_pb.EventNotification, key = full path) to Kafka, configured by the
# notification.toml in its working directory (.local/seaweedfs/). One filer
# publishes to one topic: $SEAWEEDFS_KAFKA_TOPIC.
# Sourced by services.sh (needs common.sh). Start it after Kafka.

SEAWEEDFS_VERSION="v0.0.0-20261109003541-7506e5f91cd6"
SEAWEEDFS_MODULE="github.com/seaweedfs/seaweedfs"
SEAWEEDFS_BIN="$BIN_DIR/weed"
SEAWEEDFS_HOME="$LOCAL/seaweedfs"              # working dir: notification.toml, s3.json
SEAWEEDFS_DATA="$SEAWEEDFS_HOME/data"
SEAWEEDFS_PIDFILE="$RUN_DIR/seaweedfs.pid"
SEAWEEDFS_LOG="$LOG_DIR/seaweedfs.log"

seaweedfs_go() {
    if command -v go >/dev/null; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        echo /usr/local/go/bin/go
    else
        die "seaweedfs: Go is not installed; install Go >= 1.21 (it fetches the toolchain SeaweedFS needs through the module proxy), or build $SEAWEEDFS_BIN yourself"
    fi
}

# The module's directory in Go's module cache (downloaded if missing); its
# weed/pb/filer.proto is what the protobuf parser is generated from.
seaweedfs_module_dir() {
    local go
    go="$(seaweedfs_go)"
    GOFLAGS=-mod=mod GOTOOLCHAIN=auto "$go" mod download -json "$SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

seaweedfs_installed() { [[ -x "$SEAWEEDFS_BIN" ]]; }

seaweedfs_install() {
    mkdir -p "$SEAWEEDFS_DATA"
    seaweedfs_installed && return 0
    local log="$LOG_DIR/install-seaweedfs.log" go dir
    go="$(seaweedfs_go)"
    # `go install .../weed@version` is refused (SeaweedFS's go.mod has replace
    # directives): build from the module's own directory as the main module.
    dir="$(seaweedfs_module_dir 2>>"$log")"
    [[ -n "$dir" && -d "$dir/weed" ]] ||
        { tail_log "$log"; die "seaweedfs: go mod download $SEAWEEDFS_MODULE@$SEAWEEDFS_VERSION failed"; }
    say "seaweedfs building weed $SEAWEEDFS_VERSION (about 7 min on 2 cores when Go's build cache is cold)"
    (cd "$dir" && GOFLAGS=-mod=mod GOTOOLCHAIN=auto "$go" build -o "$SEAWEEDFS_BIN.tmp" ./weed) >>"$log" 2>&1 ||
        { rm -f "$SEAWEEDFS_BIN.tmp"; tail_log "$log"; die "seaweedfs: go build ./weed failed"; }
    mv -f "$SEAWEEDFS_BIN.tmp" "$SEAWEEDFS_BIN"
}

seaweedfs_running() { pid_alive "$SEAWEEDFS_PIDFILE"; }

# Healthy = the S3 gateway answers (any HTTP status) and the filer is up.
seaweedfs_health() {
    curl -s -o /dev/null --max-time 3 "http://127.0.0.1:$SEAWEEDFS_S3_PORT/" &&
        curl -sf -o /dev/null --max-time 3 "http://127.0.0.1:$SEAWEEDFS_FILER_PORT/healthz"
}

# The filer reads notification.toml from its working directory; the S3
# gateway reads its identities from s3.json. Both are written on every start.
seaweedfs_write_config() {
    mkdir -p "$SEAWEEDFS_DATA"
    cat >"$SEAWEEDFS_HOME/notification.toml" <<TOML
# Written by deploy/local/seaweedfs.sh on every start. The filer publishes
# every metadata change (protobuf filer_pb.EventNotification, key = full
# path) to this topic; Pipelens consumes it (KafkaTopic message_format
# "seaweedfs_filer", docs/stores.md).
[notification.kafka]
enabled = true
hosts = ["127.0.0.1:$KAFKA_PORT"]
topic = "$SEAWEEDFS_KAFKA_TOPIC"
offsetFile = "$SEAWEEDFS_HOME/last.offset"
offsetSaveIntervalSeconds = 10
TOML
    umask 077
    cat >"$SEAWEEDFS_HOME/s3.json" <<JSON
{"identities": [{"name": "pipelens",
  "credentials": [{"accessKey": "$SEAWEEDFS_ACCESS_KEY", "secretKey": "$SEAWEEDFS_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
    umask 022
}

seaweedfs_up() {
    if seaweedfs_running && seaweedfs_health; then
        say "seaweedfs running  127.0.0.1:$SEAWEEDFS_S3_PORT (topic $SEAWEEDFS_KAFKA_TOPIC)"
        return 0
    fi
    if ! seaweedfs_running; then
        rm -f "$SEAWEEDFS_PIDFILE"
        local port
        for port in "$SEAWEEDFS_S3_PORT" "$SEAWEEDFS_MASTER_PORT" "$SEAWEEDFS_VOLUME_PORT" "$SEAWEEDFS_FILER_PORT"; do
            port_open "$port" && die "seaweedfs: port $port is already taken by another process (set PIPELENS_SEAWEEDFS_{S3,MASTER,VOLUME,FILER}_PORT)"
            port_open "$((port + 1))" && die "seaweedfs: port $((port + 1)) (gRPC of $port) is already taken by another process"
        done
        seaweedfs_write_config
        # Small volumes (64 MB, up to 100): a development store must not
        # preallocate 30 GB. Iceberg and Lance endpoints are not needed.
        (cd "$SEAWEEDFS_HOME" && exec setsid "$SEAWEEDFS_BIN" server -dir="$SEAWEEDFS_DATA" \
            -ip=127.0.0.1 -ip.bind=127.0.0.1 \
            -master.port="$SEAWEEDFS_MASTER_PORT" -master.port.grpc="$((SEAWEEDFS_MASTER_PORT + 1))" \
            -master.volumeSizeLimitMB=64 \
            -volume.port="$SEAWEEDFS_VOLUME_PORT" -volume.port.grpc="$((SEAWEEDFS_VOLUME_PORT + 1))" \
            -volume.max=100 \
            -filer -filer.port="$SEAWEEDFS_FILER_PORT" -filer.port.grpc="$((SEAWEEDFS_FILER_PORT + 1))" \
            -s3 -s3.port="$SEAWEEDFS_S3_PORT" -s3.port.grpc="$((SEAWEEDFS_S3_PORT + 1))" \
            -s3.config="$SEAWEEDFS_HOME/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 \
            </dev/null >>"$SEAWEEDFS_LOG" 2>&1 9>&-) &
        echo $! >"$SEAWEEDFS_PIDFILE"
    fi
    wait_healthy seaweedfs seaweedfs_health "$SEAWEEDFS_PIDFILE" "$SEAWEEDFS_LOG"
    say "seaweedfs started  127.0.0.1:$SEAWEEDFS_S3_PORT (topic $SEAWEEDFS_KAFKA_TOPIC)"
}

seaweedfs_down() {
    if seaweedfs_running; then
        stop_pidfile seaweedfs "$SEAWEEDFS_PIDFILE" 30
        say "seaweedfs stopped"
    else
        rm -f "$SEAWEEDFS_PIDFILE"
        say "seaweedfs not running"
    fi
}

seaweedfs_status() {
    if seaweedfs_running && seaweedfs_health; then
        say "seaweedfs up       127.0.0.1:$SEAWEEDFS_S3_PORT  pid $(pid_of "$SEAWEEDFS_PIDFILE")  log $SEAWEEDFS_LOG"
    elif seaweedfs_running; then
        say "seaweedfs UNHEALTHY (running, not ready)  log $SEAWEEDFS_LOG"
        return 1
    else
        say "seaweedfs down"
        return 1
    fi
}

# After seaweedfs_down: every bucket and file (the binary stays).
seaweedfs_purge() {
    seaweedfs_running && die "seaweedfs: still running; run 'services.sh down seaweedfs' first"
    rm -rf -- "$SEAWEEDFS_DATA" "$SEAWEEDFS_HOME/last.offset"
    say "seaweedfs purged"
}
