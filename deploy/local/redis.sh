# shellcheck shell=bash
# Redis from the Debian package; no persistence (--save ""), data dir .local/redis.
# Sourced by services.sh (needs common.sh).

REDIS_DIR="$LOCAL/redis"
REDIS_PIDFILE="$RUN_DIR/redis.pid"
REDIS_LOG="$LOG_DIR/redis.log"

redis_install() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server redis-tools
    fi
    mkdir -p "$REDIS_DIR"
}

redis_installed() { command -v redis-server >/dev/null && command -v redis-cli >/dev/null; }

redis_running() { pid_alive "$REDIS_PIDFILE"; }

redis_health() { [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]; }

redis_up() {
    if redis_running && redis_health; then
        say "redis     running  127.0.0.1:$REDIS_PORT"
        return 0
    fi
    if ! redis_running; then
        rm -f "$REDIS_PIDFILE"
        port_open "$REDIS_PORT" && die "redis: port $REDIS_PORT is already taken by another process (set PIPELENS_REDIS_PORT)"
        mkdir -p "$REDIS_DIR"
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes \
            --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" --dir "$REDIS_DIR" \
            --save "" --appendonly no </dev/null >>"$REDIS_LOG" 2>&1 9>&- ||
            { warn "error: redis failed to start"; tail_log "$REDIS_LOG"; exit 1; }
        # --daemonize writes the pid file shortly after forking.
        local i
        for ((i = 0; i < 50; i++)); do
            [[ -s "$REDIS_PIDFILE" ]] && break
            sleep 0.1
        done
    fi
    wait_healthy redis redis_health "$REDIS_PIDFILE" "$REDIS_LOG"
    say "redis     started  127.0.0.1:$REDIS_PORT"
}

redis_down() {
    if redis_running; then
        stop_pidfile redis "$REDIS_PIDFILE" 30
        say "redis     stopped"
    else
        rm -f "$REDIS_PIDFILE"
        say "redis     not running"
    fi
}

redis_status() {
    if redis_running && redis_health; then
        say "redis     up       127.0.0.1:$REDIS_PORT  pid $(pid_of "$REDIS_PIDFILE")  log $REDIS_LOG"
    elif redis_running; then
        say "redis     UNHEALTHY (running, no PONG)  log $REDIS_LOG"
        return 1
    else
        say "redis     down"
        return 1
    fi
}

# After redis_down: its working directory (nothing persistent anyway).
redis_purge() {
    redis_running && die "redis: still running; run 'services.sh down redis' first"
    rm -rf -- "$REDIS_DIR"
    say "redis     purged"
}
