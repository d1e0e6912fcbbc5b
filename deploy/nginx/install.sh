#!/usr/bin/env bash
# Install nginx (the Debian package) for the scale demo and the nginx tests,
# idempotently, logging to .local/log/install-apt.log like deploy/local/*.sh.
#
# Only the binary is used: the demo and the tests run nginx as a private
# process with their own prefix, config, pid and logs under .local/
# (deploy/nginx/render.py). The system service is never started here: a
# policy-rc.d answering 101 keeps the package's postinst from starting it
# where no such policy exists (containers usually ship one).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../local/common.sh
. "$HERE/../local/common.sh"
mkdir -p "$LOG_DIR"

if [[ -x /usr/sbin/nginx ]]; then
    say "nginx $(/usr/sbin/nginx -v 2>&1 | cut -d/ -f2) already installed"
    exit 0
fi
[[ $EUID -eq 0 ]] || die "installing nginx needs root (apt-get)"

policy=/usr/sbin/policy-rc.d
made_policy=""
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
fi
trap '[[ -n "$made_policy" ]] && rm -f "$policy"' EXIT
say "installing nginx (Debian package nginx-light)"
apt_install nginx-light
say "nginx $(/usr/sbin/nginx -v 2>&1 | cut -d/ -f2) installed"
