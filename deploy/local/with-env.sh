#!/usr/bin/env bash
# Run a command with the connection settings of the local services exported
# (DATABASE_URL, REDIS_URL, KAFKA_BOOTSTRAP_SERVERS, MINIO_*), so that port
# overrides given to services.sh reach Django too.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
eval "$(bash "$here/services.sh" env)"
# Local work: unlocks the development secret key and DEBUG (vizsite/settings/base.py);
# a process started any other way fails closed.
export PIPELENS_DEVELOPMENT="${PIPELENS_DEVELOPMENT:-1}"
# The recipe sandbox's venv (deploy/local/sandbox.sh), when it was built.
root="$(cd "$here/../.." && pwd)"
if [[ -s "$root/.local/sandbox-venv.path" ]]; then
    SANDBOX_VENV="${SANDBOX_VENV:-$(head -n 1 "$root/.local/sandbox-venv.path")}"
    export SANDBOX_VENV
fi
exec "$@"
