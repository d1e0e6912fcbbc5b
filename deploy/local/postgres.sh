# shellcheck shell=bash
# PostgreSQL from the Debian package, running a cluster of our own.
# Sourced by services.sh (needs common.sh).
#
# The server runs as the `postgres` OS user (it refuses to run as root), and
# that user cannot enter a checkout under a mode-700 home (root's, or anyone's
# usual place for a clone). So the cluster, its socket and its log live outside
# the checkout, in a directory of its own that postgres owns:
#   $PG_HOMES/<12 hex of sha256(real path of .local)>/{data,run,postgres.log}
# .local/postgres.home records which directory is this checkout's, so `down`,
# `status` and re-use keep finding it (also after the checkout is moved), and
# .local/log/postgres.log links to the log. A cluster made by an older version
# of this script in .local/pgdata is used where it is (legacy layout).

PG_HOMES="${PIPELENS_PG_HOMES:-/var/lib/pipelens}"
PG_POINTER="$LOCAL/postgres.home"
# The real path: worktrees whose .local is a symlink share one cluster.
LOCAL_REAL="$(cd "$LOCAL" && pwd -P)"

# pg_new_home: the directory a checkout without a record gets. A directory at
# that name that another checkout still records as its own (one moved away
# from this path) is left to it; one nobody records is an earlier clone's at
# this same path, and is re-used.
pg_new_home() {
    local base home owner n=1
    base="$PG_HOMES/$(printf '%s' "$LOCAL_REAL" | sha256sum | cut -c1-12)"
    home="$base"
    while [[ -e "$home" ]]; do
        owner="$(cat "$home/checkout" 2>/dev/null || true)"
        [[ -z "$owner" || "$owner" == "$LOCAL_REAL" ]] && break
        [[ "$(cat "$owner/postgres.home" 2>/dev/null || true)" == "$home" ]] || break
        n=$((n + 1))
        home="$base-$n"
    done
    printf '%s' "$home"
}

if [[ -s "$PG_POINTER" ]]; then
    PG_HOME="$(cat "$PG_POINTER")"
elif [[ -s "$LOCAL/pgdata/PG_VERSION" ]]; then
    PG_HOME=""                        # legacy layout, inside .local
else
    PG_HOME="$(pg_new_home)"
fi
if [[ -n "$PG_HOME" ]]; then
    PG_DATA="$PG_HOME/data"
    PG_RUN="$PG_HOME/run"             # unix socket + pid file
    PG_LOG="$PG_HOME/postgres.log"
else
    PG_DATA="$LOCAL/pgdata"
    PG_RUN="$RUN_DIR/postgres"
    PG_LOG="$LOG_DIR/postgres.log"
fi
PG_PIDFILE="$PG_RUN/postgres.pid"

pg_bindir() {
    local d
    d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
    [[ -n "$d" && -x "$d/initdb" ]] && printf '%s' "$d"
}

# From / : the postgres user may not be allowed into the caller's directory,
# and psql/pg_ctl complain when they cannot read their working directory.
as_pg() { (cd / && runuser -u postgres -- "$@"); }

# pg_record: create this checkout's directory (owned by postgres) and record it
# both ways: .local/postgres.home -> directory, directory/checkout -> .local.
pg_record() {
    [[ -n "$PG_HOME" ]] || return 0
    if [[ ! -d "$PG_HOMES" ]]; then
        mkdir -p "$PG_HOMES"
        chmod 755 "$PG_HOMES"         # root's; postgres only needs to traverse it
    fi
    mkdir -p "$PG_RUN"
    chown postgres:postgres "$PG_HOME" "$PG_RUN"
    chmod 700 "$PG_HOME"
    printf '%s\n' "$LOCAL_REAL" >"$PG_HOME/checkout"
    printf '%s\n' "$PG_HOME" >"$PG_POINTER"
    touch "$PG_LOG"
    chown postgres:postgres "$PG_LOG"
    ln -sfn "$PG_LOG" "$LOG_DIR/postgres.log"
}

postgres_install() {
    if [[ -z "$(pg_bindir)" ]]; then
        apt_install postgresql
        [[ -n "$(pg_bindir)" ]] || die "postgres: initdb still missing after apt-get install postgresql"
    fi
    pg_record
    mkdir -p "$PG_RUN"
    touch "$PG_LOG"
    chown postgres:postgres "$PG_RUN" "$PG_LOG"
    as_pg test -w "$PG_RUN" ||
        die "postgres: the postgres OS user cannot write $PG_RUN; every parent directory must be o+x (or set PIPELENS_PG_HOMES)"
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
        pg_record
        mkdir -p "$PG_RUN"
        touch "$PG_LOG"
        chown postgres:postgres "$PG_RUN" "$PG_LOG"
        # Runtime settings are passed on the command line, so a changed port
        # or a moved cluster needs no edit of its config files. pg_ctl runs
        # the -o string through /bin/sh: the single quotes keep a path whole.
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

# After postgres_down: delete the cluster, and its directory outside .local
# only when that directory records this checkout as its owner.
postgres_purge() {
    postgres_running && die "postgres: still running; run 'services.sh down postgres' first"
    if [[ -n "$PG_HOME" ]]; then
        if [[ -d "$PG_HOME" ]]; then
            [[ "$(cat "$PG_HOME/checkout" 2>/dev/null || true)" == "$LOCAL_REAL" ]] ||
                die "postgres: $PG_HOME does not record $LOCAL_REAL as its checkout; not deleting it"
            rm -rf -- "$PG_HOME"
        fi
        rm -f "$PG_POINTER" "$LOG_DIR/postgres.log"
    else
        rm -rf -- "$PG_DATA" "$PG_RUN"
    fi
    say "postgres  purged"
}
