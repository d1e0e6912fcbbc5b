#!/usr/bin/env bash
# The local base image for `make image` (docs/deploy.md, "The image").
#
# No image registry is reachable from the machines Pipelens is built on, so the
# official python:3.11-slim cannot be pulled. This script makes an equivalent
# base from Debian's own packages instead: `debootstrap --variant=minbase
# bookworm` into a directory under .local/, then `podman import` of its tar as
# $BASE_IMAGE (default localhost/debian-python-base:bookworm). Bookworm's
# python3 is 3.11, which the Containerfile installs on top when the base lacks
# it. Idempotent: an existing image is reused (PIPELENS_REBUILD_BASE=1 rebuilds).
#
# Also installs what building and running images needs on this machine kind
# (podman, runc, debootstrap; docs/deploy.md, "Podman on this machine kind"):
# podman's default crun cannot run here, runc can.
set -euo pipefail
# shellcheck source=../local/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/common.sh"

BASE_IMAGE="${BASE_IMAGE:-localhost/debian-python-base:bookworm}"
SUITE="${PIPELENS_BASE_SUITE:-bookworm}"
# The mirror this machine's apt already uses (deb.debian.org by default).
MIRROR="${PIPELENS_DEBIAN_MIRROR:-$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"

need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
    say "installing ${need[*]} (Debian packages; log in .local/log/install-apt.log)"
    apt_install "${need[@]}"
fi

# One builder at a time: concurrent `make image` calls wait here.
exec 9>"$RUN_DIR/image-base.lock"
flock -w 1800 9 || die "another build-base.sh has held $RUN_DIR/image-base.lock for 30 minutes"

if [[ "${PIPELENS_REBUILD_BASE:-}" != 1 ]] && podman image exists "$BASE_IMAGE"; then
    exit 0
fi

say "building the base image $BASE_IMAGE from Debian $SUITE ($MIRROR; about a minute)"
log="$LOG_DIR/image-base.log"
root="$LOCAL/image-base/$SUITE"
rm -rf "$root"
mkdir -p "$root"
t0=$SECONDS
debootstrap --variant=minbase "$SUITE" "$root" "$MIRROR" >>"$log" 2>&1 ||
    { tail_log "$log"; die "debootstrap $SUITE failed"; }
# Keep the image small: apt's downloaded archives and lists are not needed to run.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" --numeric-owner -c . |
    podman import --change 'CMD ["/bin/bash"]' --change 'ENV LANG=C.UTF-8' - "$BASE_IMAGE" >>"$log" 2>&1 ||
    { tail_log "$log"; die "podman import $BASE_IMAGE failed"; }
rm -rf "$root"
say "base image $BASE_IMAGE ready ($((SECONDS - t0))s)"
