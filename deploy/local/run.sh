#!/usr/bin/env bash
# `make run`: the portal with its real services (already up), a demo login,
# and every process under one runner (honcho). Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PATH="$PWD/.venv/bin:$PATH"
export PIPELENS_WEB_PORT="${PIPELENS_WEB_PORT:-8000}"
# Web-app (HTML) outputs come from a second origin; "localhost" rather than
# 127.0.0.1 makes it another site, so the portal's cookies never go there.
export PIPELENS_WEBAPP_PORT="${PIPELENS_WEBAPP_PORT:-8001}"
export WEBAPP_ORIGIN="${WEBAPP_ORIGIN:-http://localhost:${PIPELENS_WEBAPP_PORT}}"
# The web-app origin has no database or store access: it asks the portal (the `web:` daphne).
export WEBAPP_PORTAL_URL="${WEBAPP_PORTAL_URL:-http://127.0.0.1:${PIPELENS_WEB_PORT}}"
# Recipes (user Python in the bubblewrap sandbox, docs/recipes.md) are on for local work;
# the Procfile's `sandbox:` worker serves them.
export RECIPES_ENABLED="${RECIPES_ENABLED:-true}"
# Prometheus metrics of every process (daphne, consumer, workers) go to files in one
# directory that /metrics adds up (vizsite/metrics.py); emptied at each start, since
# values of processes from an earlier run would otherwise be counted again.
export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-$PWD/.local/run/prometheus-${PIPELENS_WEB_PORT}}"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
rm -f "$PROMETHEUS_MULTIPROC_DIR"/*.db
python manage.py setup_demo --store "${PIPELENS_STORE:-default}"
url="http://127.0.0.1:${PIPELENS_WEB_PORT}/"
# PIPELENS_STORE=seaweedfs: the demo bucket lives in SeaweedFS (docs/stores.md).
case "${PIPELENS_STORE:-minio}" in
    seaweedfs) store_name=SeaweedFS store_url="http://${SEAWEEDFS_ENDPOINT}/" store_key="${SEAWEEDFS_ACCESS_KEY}" ;;
    *) store_name=MinIO store_url="http://${MINIO_ENDPOINT}/" store_key="${MINIO_ACCESS_KEY}" ;;
esac
cat <<MSG

  Pipelens is starting: open ${url}  (admin: ${url}admin/)
  Upload into the ${store_name} bucket 'mlpipeline' at ${store_url} (access key ${store_key})
  and watch runs and artifacts appear. Ctrl-C stops the portal; 'make services-down' stops the services.

MSG
exec honcho -f deploy/local/Procfile -d . start
