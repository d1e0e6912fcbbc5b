#!/usr/bin/env bash
# `make image`: build deploy/docker/Containerfile with podman and tag it
# $IMAGE:$VERSION and $IMAGE:latest (default localhost/pipelens; docs/deploy.md).
#
# No image registry is reachable here, so the base is made from Debian's
# packages first (build-base.sh, reused once made). Elsewhere, build with the
# Containerfile's default base: BASE_IMAGE=docker.io/library/python:3.11-slim.
# pip reaches PyPI through the host's network (--network host).
# PODMAN_BUILD_ARGS adds flags to `podman build` (e.g. --no-cache: build from
# nothing; with PIPELENS_REBUILD_BASE=1 the base is made again too).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../local/common.sh
source "$HERE/../local/common.sh"
# shellcheck source=podman-flags.sh
source "$HERE/podman-flags.sh"

IMAGE="${IMAGE:-localhost/pipelens}"
VERSION="${VERSION:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo dev)}"
export BASE_IMAGE="${BASE_IMAGE:-localhost/debian-python-base:bookworm}"

# Only a local base (localhost/...) can be made here; any other is pulled by podman.
if [[ "$BASE_IMAGE" == localhost/* ]]; then
    bash "$HERE/build-base.sh"
fi

# pip inside the build trusts what pip here trusts (an egress proxy may re-sign
# PyPI's certificates): the CA bundle goes in as a build secret, in no layer.
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
secret=()
[[ -s "$ca" ]] && secret=(--secret "id=pip-ca,src=$ca")

read -r -a extra <<<"${PODMAN_BUILD_ARGS:-}"

log="$LOG_DIR/image-build.log"
: >"$log"
say "building $IMAGE:$VERSION on $BASE_IMAGE (log: .local/log/image-build.log)"
t0=$SECONDS
podman build "${PODMAN_RUNTIME_FLAGS[@]}" \
    --file "$HERE/Containerfile" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --build-arg "VERSION=$VERSION" \
    "${secret[@]}" \
    "${extra[@]}" \
    --tag "$IMAGE:$VERSION" --tag "$IMAGE:latest" \
    "$ROOT" >>"$log" 2>&1 || { tail_log "$log"; die "podman build failed"; }
size="$(podman image inspect --format '{{.Size}}' "$IMAGE:$VERSION")"
say "image $IMAGE:$VERSION (also :latest) ready: $((size / 1000000)) MB, built in $((SECONDS - t0))s"
