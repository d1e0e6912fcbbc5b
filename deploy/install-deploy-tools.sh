#!/usr/bin/env bash
# What tests/deploy needs to check deploy/compose and deploy/k8s (`make test` runs it):
# Debian's docker-compose (1.29: `config` validates the file against the Compose
# schema without a daemon) and podman-compose (parses it the way `podman-compose up`
# will), and the pinned kustomize built from the Go module proxy into .local/bin.
set -euo pipefail
# shellcheck source=local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/local/common.sh"

missing=()
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v podman-compose >/dev/null || missing+=(podman-compose)
if ((${#missing[@]})); then
    say "installing ${missing[*]} (Debian packages)"
    apt_install "${missing[@]}"
fi
bash "$DEPLOY_DIR/../k8s/kustomize.sh" >/dev/null
