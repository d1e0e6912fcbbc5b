#!/usr/bin/env bash
# `make check-first-run`: a newcomer's first `make test` and `make run`, for real.
#
# Clones this checkout's HEAD into a mode-700 directory under $HOME whose path
# contains a space (a home directory, which only its owner may enter, is the
# usual place for a clone), gives it service ports of its own so that it never
# meets the services of the checkout it runs from, and there runs:
#   make services, make migrate,
#   make test with a few integration tests (PYTEST_ARGS),
#   checks that the tests left nothing for `make run`: no topic row in the
#     development database, no message on the topic `make run` consumes, no
#     test topic left in Kafka,
#   make run in the background: waits for the login page, uploads one object
#     into the demo bucket and waits for it to be stored, with no ingest error.
# Then it stops everything, deletes the services' data (PostgreSQL's too, which
# lives outside the clone) and the clone. It is bounded in time: at most
# PIPELENS_FIRST_RUN_TIMEOUT seconds (default 1800) in all, a limit per step.
#
# Only committed work is checked (a clone of HEAD). Downloads that take minutes
# (Kafka's jars, the MinIO binary) are copied from this checkout's .local when
# it has them; PIPELENS_FIRST_RUN_COLD=1 makes the clone fetch and build them.
# PIPELENS_FIRST_RUN_TESTS replaces the selection of tests.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TIMEOUT="${PIPELENS_FIRST_RUN_TIMEOUT:-1800}"
# One test per kind of process a first run starts: the consumer in the test
# process (MinIO -> Kafka -> PostgreSQL), manage.py and a Celery worker as
# subprocesses of the clone's virtualenv, daphne with Chromium.
TESTS="${PIPELENS_FIRST_RUN_TESTS:-tests/streaming/ingest/test_consume_events.py::test_overwrite_gives_one_artifact_with_the_newer_etag tests/streaming/ingest/test_consume_events.py::test_sigterm_stops_the_command_cleanly tests/runs/test_renditions_live.py::test_a_new_version_replaces_the_preview_and_deleted_artifacts_are_not_rendered tests/e2e/test_live_run_page.py tests/runs/test_views.py::test_login_logout_and_password_change}"
START=$SECONDS
PARENT=""
CLONE=""
RUN_PID=""
ENV=()
WEB_PORT=""
LOG="$(mktemp "${TMPDIR:-/tmp}/pipelens-first-run.XXXXXX.log")"
RUN_LOG="${LOG%.log}.make-run.log"   # make run's own output, apart from the steps'

say() { printf '%s\n' "$*"; }
step() { say "== [$((SECONDS - START))s] $*"; }
fail() {
    say "FAILED after $((SECONDS - START))s: $*" >&2
    local f
    for f in "$RUN_LOG" "$LOG"; do
        [[ -s "$f" ]] || continue
        say "---- last 60 lines of $f ----" >&2
        tail -n 60 "$f" >&2
    done
    exit 1
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_ports: the first block of 16 free ports from 25400 up. Below the
# ephemeral range, so no client socket of the machine holds one of them.
pick_ports() {
    local base p free
    for ((base = 25400; base < 27400; base += 20)); do
        free=1
        for ((p = base; p < base + 16; p++)); do
            if port_open "$p"; then free=0; break; fi
        done
        ((free)) && { say "$base"; return 0; }
    done
    return 1
}

# The caller's own service settings (a `make` or with-env.sh around this
# script, a developer's shell) must not leak into the clone: it gets the
# environment of a newcomer's shell, plus its ports.
clean_env() {
    local v unset_args=()
    for v in $(compgen -e); do
        case "$v" in
            PIPELENS_* | MINIO_* | SEAWEEDFS_* | DATABASE_URL | REDIS_URL | KAFKA_* | DJANGO_* | RENDER_QUEUE | CELERY_* | \
                CHANNEL_LAYER* | WEBAPP_ORIGIN | WEBAPP_PORTAL_URL | SANDBOX_QUEUE | PYTEST_* | VIRTUAL_ENV | MAKEFLAGS | MAKELEVEL | MFLAGS | B)
                unset_args+=(-u "$v") ;;
        esac
    done
    local base
    base="$(pick_ports)" || fail "no 16 free ports between 25400 and 27400"
    ENV=(env "${unset_args[@]}"
        "PIPELENS_PG_PORT=$base" "PIPELENS_REDIS_PORT=$((base + 1))"
        "PIPELENS_KAFKA_PORT=$((base + 2))" "PIPELENS_KAFKA_CONTROLLER_PORT=$((base + 3))"
        "PIPELENS_MINIO_PORT=$((base + 4))" "PIPELENS_MINIO_CONSOLE_PORT=$((base + 5))"
        "PIPELENS_WEB_PORT=$((base + 6))" "PIPELENS_WEBAPP_PORT=$((base + 7))"
        "PIPELENS_SEAWEEDFS_S3_PORT=$((base + 8))" "PIPELENS_SEAWEEDFS_MASTER_PORT=$((base + 10))"
        "PIPELENS_SEAWEEDFS_VOLUME_PORT=$((base + 12))" "PIPELENS_SEAWEEDFS_FILER_PORT=$((base + 14))")
    WEB_PORT=$((base + 6))
    say "   ports $base-$((base + 15)) (web $WEB_PORT)"
}

# remaining LIMIT: LIMIT, or less when the whole check's deadline is nearer
# (at least 1: a step past the deadline then fails at once).
remaining() {
    local left=$((TIMEOUT - (SECONDS - START)))
    ((left < 1)) && left=1
    if ((left < $1)); then say "$left"; else say "$1"; fi
}

# in_clone LIMIT CMD...: CMD in the clone with the clean environment, output
# to the log, killed (with its process group) after LIMIT seconds.
in_clone() {
    local limit
    limit="$(remaining "$1")"
    shift
    (cd "$CLONE" && timeout -k 20 "$limit" "${ENV[@]}" "$@") >>"$LOG" 2>&1
}

seed_downloads() {
    [[ "${PIPELENS_FIRST_RUN_COLD:-0}" == 1 ]] && return 0
    local from="$SRC/.local"
    # Hard links where the file system allows: nothing in the clone rewrites them.
    if [[ -s "$from/kafka/libs/.pom.sha256" ]]; then
        mkdir -p "$CLONE/.local/kafka"
        cp -al "$from/kafka/libs" "$CLONE/.local/kafka/libs" 2>/dev/null ||
            cp -a "$from/kafka/libs" "$CLONE/.local/kafka/libs"
        say "   Kafka jars copied from $from"
    fi
    if [[ -x "$from/bin/minio" ]]; then
        mkdir -p "$CLONE/.local/bin"
        cp -al "$from/bin/minio" "$CLONE/.local/bin/minio" 2>/dev/null || cp -a "$from/bin/minio" "$CLONE/.local/bin/minio"
        say "   MinIO binary copied from $from"
    fi
    if [[ -x "$from/bin/weed" ]]; then
        mkdir -p "$CLONE/.local/bin"
        cp -al "$from/bin/weed" "$CLONE/.local/bin/weed" 2>/dev/null || cp -a "$from/bin/weed" "$CLONE/.local/bin/weed"
        say "   SeaweedFS binary copied from $from"
    fi
}

stop_run() {
    [[ -n "$RUN_PID" ]] || return 0
    local i
    kill -TERM -- "-$RUN_PID" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        kill -0 -- "-$RUN_PID" 2>/dev/null || { RUN_PID=""; return 0; }
        sleep 0.2
    done
    kill -KILL -- "-$RUN_PID" 2>/dev/null || true
    RUN_PID=""
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_run
    if [[ -n "$CLONE" && -f "$CLONE/deploy/local/services.sh" ]]; then
        step "stopping the clone's services and deleting their data"
        (cd "$CLONE" && timeout -k 10 300 "${ENV[@]}" bash deploy/local/services.sh purge) >>"$LOG" 2>&1 ||
            { say "warning: services.sh purge failed in $CLONE; see $LOG" >&2; rc=1; }
    fi
    [[ -n "$PARENT" ]] && rm -rf -- "$PARENT"
    if ((rc == 0)); then
        rm -f "$LOG" "$RUN_LOG"
        say "first run: OK in $((SECONDS - START))s"
    else
        say "first run: FAILED after $((SECONDS - START))s; logs kept in $LOG (and $RUN_LOG)" >&2
    fi
    exit "$rc"
}

# check_after_test: nothing the tests did may reach `make run`.
check_after_test() {
    in_clone 120 bash deploy/local/with-env.sh .venv/bin/python - <<'PY'
import os
import sys

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "vizsite.settings.base"
django.setup()
from confluent_kafka import Consumer, TopicPartition
from django.conf import settings

from runs.models import KafkaTopic

problems = []
rows = list(KafkaTopic.objects.values_list("name", flat=True))
if rows:
    problems.append(f"make test left topic rows in the development database: {rows}")
probe = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": "pipelens-first-run-check"})
topics = probe.list_topics(timeout=10).topics
dev = os.environ["MINIO_KAFKA_TOPIC"]
test = os.environ.get("MINIO_TEST_KAFKA_TOPIC", "pipelens-test-events")
published = sum(probe.get_watermark_offsets(TopicPartition(dev, p), timeout=10)[1] for p in topics[dev].partitions)
if published:
    problems.append(f"make test published {published} messages to {dev}, the topic make run consumes")
if test in topics:
    problems.append(f"make test left its topic {test} in Kafka")
probe.close()
print("\n".join(problems) or f"after make test: no topic rows, {dev} empty, {test} deleted")
sys.exit(1 if problems else 0)
PY
}

# check_run: the portal answers with its login page, and an upload into the
# demo bucket is stored, with no ingest error.
check_run() {
    local i page
    for ((i = 0; i < 180; i++)); do
        kill -0 "$RUN_PID" 2>/dev/null || fail "make run exited before the portal answered"
        page="$(curl -sf --max-time 3 "http://127.0.0.1:$WEB_PORT/accounts/login/" 2>/dev/null)" && break
        sleep 1
    done
    [[ "$page" == *'name="username"'* && "$page" == *'name="password"'* ]] ||
        fail "no login page on http://127.0.0.1:$WEB_PORT/accounts/login/ within 180 s"
    [[ "$(curl -s -o /dev/null -w '%{redirect_url}' --max-time 5 "http://127.0.0.1:$WEB_PORT/")" == *"/accounts/login/"* ]] ||
        fail "http://127.0.0.1:$WEB_PORT/ does not send an anonymous visitor to the login page"
    say "   login page on http://127.0.0.1:$WEB_PORT/accounts/login/"
    in_clone 120 bash deploy/local/with-env.sh .venv/bin/python - <<'PY'
import io
import os
import sys
import time

import django

os.environ["DJANGO_SETTINGS_MODULE"] = "vizsite.settings.base"
django.setup()
from runs.models import Artifact, IngestError, KafkaTopic
from runs.storage import minio_client

key = "first-run/train/metrics.csv"
data = b"epoch,loss\n1,0.5\n"
minio_client().put_object("mlpipeline", key, io.BytesIO(data), len(data), content_type="text/csv")
deadline = time.monotonic() + 60
while not Artifact.objects.filter(bucket__name="mlpipeline", key=key).exists():
    if time.monotonic() > deadline:
        sys.exit(f"mlpipeline/{key} was not stored within 60 s")
    time.sleep(0.2)
errors = list(IngestError.objects.values_list("error", flat=True)[:5])
rows = sorted(KafkaTopic.objects.values_list("name", flat=True))
print(f"stored mlpipeline/{key}; topic rows {rows}; ingest errors {errors}")
sys.exit(1 if errors or rows != [os.environ["MINIO_KAFKA_TOPIC"]] else 0)
PY
}

main() {
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    step "clone $SRC (HEAD $(git -C "$SRC" rev-parse --short HEAD)) into a mode-700 directory with a space"
    PARENT="$(mktemp -d "$HOME/pipelens first-run-XXXX")"
    chmod 700 "$PARENT"
    CLONE="$PARENT/pipelens"
    git clone -q --no-hardlinks "$SRC" "$CLONE" >>"$LOG" 2>&1 || fail "git clone"
    git -C "$CLONE" checkout -q --detach "$(git -C "$SRC" rev-parse HEAD)" >>"$LOG" 2>&1 || fail "git checkout"
    say "   $CLONE"
    clean_env
    seed_downloads

    step "make services"
    in_clone 1500 make services </dev/null || fail "make services"
    step "make migrate"
    in_clone 300 make migrate </dev/null || fail "make migrate"
    step "make test PYTEST_ARGS=<$(wc -w <<<"$TESTS") selections>"
    in_clone 900 make test PYTEST_ARGS="$TESTS" </dev/null || fail "make test"
    grep -E '^=+ .*(passed|failed|error).* =+$|Warning: ' "$LOG" | sed 's/^ */   /' || true
    step "checking what make test left behind"
    check_after_test || fail "make test left something for make run"
    tail -n 1 "$LOG" | sed 's/^/   /'

    step "make run (in the background)"
    # Its own session, so that stop_run ends honcho and every process under it.
    (cd "$CLONE" && exec setsid "${ENV[@]}" make run) </dev/null >"$RUN_LOG" 2>&1 &
    RUN_PID=$!
    check_run || fail "make run"
    tail -n 1 "$LOG" | sed 's/^/   /'
    step "stopping make run"
    stop_run
}

main "$@"
