# shellcheck shell=bash
# PostgreSQL from the Debian package, running our own cluster in .local/pgdata.
# Sourced by services.sh (needs common.sh). The server runs as the `postgres`
# OS user (it refuses to run as root), so every directory from / down to
# .local must be traversable by others (o+x), which a default checkout is.

PG_DATA="$LOCAL/pgdata"
PG_RUN="$RUN_DIR/postgres"           # unix socket + pid file, owned by postgres
PG_PIDFILE="$PG_RUN/postgres.pid"
PG_LOG="$LOG_DIR/postgres.log"

pg_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$d" && -x "$d/initdb" ]] && printf '%s' "$d"
}

as_pg() { runuser -u postgres -- "$@"; }

postgres_install() {
    if [[ -z "$(pg_bindir)" ]]; then
        apt_install postgresql
        [[ -n "$(pg_bindir)" ]] || die "postgres: initdb still missing after apt-get install postgresql"
    fi
    as_pg test -x "$LOCAL" ||
        die "postgres: the postgres OS user cannot reach $LOCAL; make every parent directory o+x (chmod o+x)"
    mkdir -p "$PG_RUN"
    chown postgres:postgres "$PG_RUN"
    touch "$PG_LOG"
    chown postgres:postgres "$PG_LOG"
    if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
        mkdir -p "$PG_DATA"
        chown postgres:postgres "$PG_DATA"
        chmod 700 "$PG_DATA"
        # initdb only sets up the superuser `postgres` (peer auth over the
        # socket); the app role is created by postgres_up over that socket.
        as_pg "$(pg_bindir)/initdb" -D "$PG_DATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 >>"$LOG_DIR/install-postgres.log" 2>&1 ||
            { tail_log "$LOG_DIR/install-postgres.log"; die "postgres: initdb failed"; }
    fi
}

postgres_installed() { [[ -n "$(pg_bindir)" && -s "$PG_DATA/PG_VERSION" ]]; }

# Ours and running (postmaster.pid names a live postmaster).
postgres_running() {
    [[ -s "$PG_DATA/PG_VERSION" ]] && as_pg "$(pg_bindir)/pg_ctl" status -D "$PG_DATA" >/dev/null 2>&1
}

postgres_health() {
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" &&
        [[ "$(PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 psql -X -q -At -h 127.0.0.1 -p "$PG_PORT" \
            -U "$PG_USER" -d "$PG_DB" -c 'select 1' 2>/dev/null)" == 1 ]]
}

postgres_server_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }

# Create (or update) the app role and its database; idempotent.
postgres_ensure_role() {
    as_pg psql -X -q -v ON_ERROR_STOP=1 -h "$PG_RUN" -p "$PG_PORT" -d postgres \
        -v user="$PG_USER" -v pw="$PG_PASSWORD" -v db="$PG_DB" >>"$PG_LOG" 2>&1 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'user')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
}

postgres_up() {
    if postgres_running && postgres_health; then
        say "postgres  running  127.0.0.1:$PG_PORT"
        return 0
    fi
    if ! postgres_running; then
        port_open "$PG_PORT" && die "postgres: port $PG_PORT is already taken by another process (set PIPELENS_PG_PORT)"
        mkdir -p "$PG_RUN"
        touch "$PG_LOG"
        chown postgres:postgres "$PG_RUN" "$PG_LOG"
        # Runtime settings are passed on the command line, so a changed port
        # or a moved checkout needs no edit of the cluster's config files.
        as_pg "$(pg_bindir)/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -s -w -t "$UP_TIMEOUT" \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories='$PG_RUN' -c external_pid_file='$PG_PIDFILE'" \
            </dev/null >>"$PG_LOG" 2>&1 9>&- || { warn "error: postgres failed to start"; tail_log "$PG_LOG"; exit 1; }
    fi
    wait_healthy postgres postgres_server_ready "" "$PG_LOG"
    postgres_ensure_role || { warn "error: postgres: creating role/database failed"; tail_log "$PG_LOG"; exit 1; }
    wait_healthy postgres postgres_health "" "$PG_LOG"
    say "postgres  started  127.0.0.1:$PG_PORT"
}

postgres_down() {
    if postgres_running; then
        as_pg "$(pg_bindir)/pg_ctl" stop -D "$PG_DATA" -m fast -s -w -t 60 >>"$PG_LOG" 2>&1 ||
            { warn "error: postgres did not stop"; tail_log "$PG_LOG"; exit 1; }
        say "postgres  stopped"
    else
        say "postgres  not running"
    fi
}

postgres_status() {
    if postgres_running && postgres_health; then
        say "postgres  up       127.0.0.1:$PG_PORT  pid $(pid_of "$PG_DATA/postmaster.pid")  log $PG_LOG"
    elif postgres_running; then
        say "postgres  UNHEALTHY (running, query failed)  log $PG_LOG"
        return 1
    else
        say "postgres  down"
        return 1
    fi
}
