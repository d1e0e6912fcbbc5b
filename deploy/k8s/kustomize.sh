#!/usr/bin/env bash
# Prints the path of the pinned kustomize CLI, building it first when missing:
# `go install` from the Go module proxy into .local/bin (like MinIO and
# SeaweedFS in deploy/local/), reused afterwards. tests/deploy/test_k8s.py
# calls it; `$(bash deploy/k8s/kustomize.sh) build deploy/k8s/overlays/kubeflow`
# shows what `kubectl apply -k` would apply (docs/deploy.md).
#
# v5.8.2 is the newest release whose go.mod asks for no newer Go than this
# project's (1.26; v5.8.3 needs 1.27 through kustomize/api v0.21.3).
set -euo pipefail
# shellcheck source=../local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/common.sh"

KUSTOMIZE_VERSION="v5.8.2"
KUSTOMIZE_BIN="$BIN_DIR/kustomize-$KUSTOMIZE_VERSION"

if [[ ! -x "$KUSTOMIZE_BIN" ]]; then
    if command -v go >/dev/null; then
        go="$(command -v go)"
    elif [[ -x /usr/local/go/bin/go ]]; then
        go=/usr/local/go/bin/go
    else
        die "kustomize: Go is not installed; install Go >= 1.26 or put kustomize $KUSTOMIZE_VERSION at $KUSTOMIZE_BIN"
    fi
    log="$LOG_DIR/install-kustomize.log"
    tmp="$(mktemp -d "$BIN_DIR/.kustomize.XXXXXX")"
    # Built into a private directory, then renamed: two concurrent first runs
    # never see a half-written binary.
    GOBIN="$tmp" GOFLAGS=-mod=mod "$go" install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >>"$log" 2>&1 ||
        { rm -rf "$tmp"; tail_log "$log"; die "kustomize: go install sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION failed"; }
    mv -f "$tmp/kustomize" "$KUSTOMIZE_BIN"
    rm -rf "$tmp"
fi
printf '%s\n' "$KUSTOMIZE_BIN"
