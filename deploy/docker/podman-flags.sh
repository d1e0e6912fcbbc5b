# shellcheck shell=bash
# Flags podman needs on this machine kind (Debian 12, root without
# CAP_SYS_RESOURCE, cgroups in hybrid mode); sourced by build-image.sh and read by
# tests/deploy/test_image.py. crun refuses hybrid cgroups, runc works; the
# default ulimits try to raise the hard limits and fail; services listen on the
# host's 127.0.0.1, reachable with host networking.
# shellcheck disable=SC2034  # used by the scripts that source this file
PODMAN_RUNTIME_FLAGS=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --network host)
