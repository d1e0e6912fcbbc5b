# shellcheck shell=bash
# Shared paths, ports, credentials and helpers for deploy/local/*.sh.
# Sourced, never run. Everything generated lives under <repo>/.local/, except
# what runs as another OS user (PostgreSQL, see postgres.sh). Every path may
# contain spaces: quote each expansion.

DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DEPLOY_DIR/../.." && pwd)"
LOCAL="$ROOT/.local"
RUN_DIR="$LOCAL/run"
LOG_DIR="$LOCAL/log"
BIN_DIR="$LOCAL/bin"

# Ports (defaults chosen not to clash with system-wide services).
PG_PORT="${PIPELENS_PG_PORT:-54329}"
REDIS_PORT="${PIPELENS_REDIS_PORT:-63799}"
KAFKA_PORT="${PIPELENS_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${PIPELENS_KAFKA_CONTROLLER_PORT:-19093}"
MINIO_PORT="${PIPELENS_MINIO_PORT:-19000}"
MINIO_CONSOLE_PORT="${PIPELENS_MINIO_CONSOLE_PORT:-19001}"
# SeaweedFS (deploy/local/seaweedfs.sh): S3 gateway, then master, volume and
# filer; each gRPC port is its HTTP port + 1.
SEAWEEDFS_S3_PORT="${PIPELENS_SEAWEEDFS_S3_PORT:-19300}"
SEAWEEDFS_MASTER_PORT="${PIPELENS_SEAWEEDFS_MASTER_PORT:-19333}"
SEAWEEDFS_VOLUME_PORT="${PIPELENS_SEAWEEDFS_VOLUME_PORT:-19380}"
SEAWEEDFS_FILER_PORT="${PIPELENS_SEAWEEDFS_FILER_PORT:-19388}"

# Local-only credentials.
PG_USER="${PIPELENS_PG_USER:-pipelens}"
PG_PASSWORD="${PIPELENS_PG_PASSWORD:-pipelens}"
PG_DB="${PIPELENS_PG_DB:-pipelens}"
MINIO_USER="${PIPELENS_MINIO_USER:-pipelens}"
MINIO_PASSWORD="${PIPELENS_MINIO_PASSWORD:-pipelens-secret}"
MINIO_KAFKA_TOPIC="${PIPELENS_MINIO_KAFKA_TOPIC:-minio-events}"
MINIO_NOTIFY_ID="PIPELENS"   # target id: env suffix and ARN arn:minio:sqs::PIPELENS:kafka
# Tests and benchmarks upload through MinIO targets of their own, so nothing
# they put ever reaches the topic `make run` consumes. They create their topic
# when they start and delete it when they end (streaming/session_topics.py).
MINIO_TEST_KAFKA_TOPIC="${PIPELENS_MINIO_TEST_KAFKA_TOPIC:-pipelens-test-events}"
MINIO_TEST_NOTIFY_ID="PIPELENSTEST"
MINIO_BENCH_KAFKA_TOPIC="${PIPELENS_MINIO_BENCH_KAFKA_TOPIC:-pipelens-bench-events}"
MINIO_BENCH_NOTIFY_ID="PIPELENSBENCH"
# SeaweedFS: S3 credentials (same defaults as MinIO's) and the one topic its
# filer publishes every metadata change to (notification.toml).
SEAWEEDFS_ACCESS_KEY="${PIPELENS_SEAWEEDFS_ACCESS_KEY:-$MINIO_USER}"
SEAWEEDFS_SECRET_KEY="${PIPELENS_SEAWEEDFS_SECRET_KEY:-$MINIO_PASSWORD}"
SEAWEEDFS_KAFKA_TOPIC="${PIPELENS_SEAWEEDFS_KAFKA_TOPIC:-seaweedfs-events}"

# Seconds `up` waits for one service to answer its health check.
UP_TIMEOUT="${PIPELENS_UP_TIMEOUT:-120}"

VENV_PY="$ROOT/.venv/bin/python"

say() { printf '%s\n' "$*"; }
warn() { printf '%s\n' "$*" >&2; }
die() { warn "error: $*"; exit 1; }

# tail_log FILE...: the last 30 lines of each existing, non-empty file, on stderr.
tail_log() {
    local f
    for f in "$@"; do
        [[ -s "$f" ]] || continue
        warn "---- last 30 lines of $f ----"
        tail -n 30 "$f" >&2
        warn "----"
    done
}

# pid_alive PIDFILE: true when the file names a live process.
pid_alive() {
    local pid
    [[ -s "$1" ]] || return 1
    pid="$(head -n 1 "$1")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

pid_of() { head -n 1 "$1" 2>/dev/null || true; }

# port_open PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# stop_pidfile NAME PIDFILE [SECONDS]: SIGTERM, wait, then SIGKILL.
stop_pidfile() {
    local name="$1" pidfile="$2" secs="${3:-30}" pid i
    if ! pid_alive "$pidfile"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(pid_of "$pidfile")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < secs * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
        sleep 0.2
    done
    warn "$name: pid $pid ignored SIGTERM for ${secs}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
    rm -f "$pidfile"
}

# wait_healthy NAME CHECK_FN PIDFILE LOG...: poll CHECK_FN (quietly) until it
# succeeds, the process named in PIDFILE dies, or UP_TIMEOUT runs out.
# PIDFILE may be "" when the service has no pid file of ours to watch.
wait_healthy() {
    local name="$1" check="$2" pidfile="$3"
    shift 3
    local deadline=$((SECONDS + UP_TIMEOUT))
    while ((SECONDS < deadline)); do
        if "$check" >/dev/null 2>&1; then
            return 0
        fi
        if [[ -n "$pidfile" ]] && ! pid_alive "$pidfile"; then
            warn "error: $name exited during startup"
            tail_log "$@"
            exit 1
        fi
        sleep 0.5
    done
    warn "error: $name did not become healthy within ${UP_TIMEOUT}s"
    tail_log "$@"
    exit 1
}

# apt_install PKG...: one `apt-get update` per run, then a quiet install.
# Another apt-get on the machine (a parallel install) holds dpkg's lock: wait
# for it up to 10 minutes instead of failing at once.
APT_UPDATED=""
apt_install() {
    local log="$LOG_DIR/install-apt.log"
    if [[ -z "$APT_UPDATED" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update >>"$log" 2>&1 ||
            { tail_log "$log"; die "apt-get update failed"; }
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" >>"$log" 2>&1 ||
        { tail_log "$log"; die "apt-get install $* failed"; }
}

urlencode() {
    local s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
            [a-zA-Z0-9._~-]) out+="$c" ;;
            *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

# minio_arn ID: the ARN a bucket notification names to reach target ID.
minio_arn() { printf 'arn:minio:sqs::%s:kafka' "$1"; }

have_venv_module() { [[ -x "$VENV_PY" ]] && "$VENV_PY" -c "import $1" >/dev/null 2>&1; }

mkdir -p "$RUN_DIR" "$LOG_DIR" "$BIN_DIR"
