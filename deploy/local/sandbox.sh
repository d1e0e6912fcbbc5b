#!/usr/bin/env bash
# The recipe sandbox (docs/recipes.md): bubblewrap (Debian's `bwrap`) and the
# sandbox's own virtualenv (pins in requirements-sandbox.txt).
# Called by `make sandbox` (a prerequisite of `make test` and `make run`);
# idempotent: a venv whose pins match is reused.
#
# The venv lives outside the checkout, in /opt/pipelens/sandbox-<hash of the pins>,
# root-owned and world-readable: recipes run as an unprivileged user, who must
# reach it whatever the checkout's path (a clone in a mode-700 home directory
# is the usual case). Its path is written to .local/sandbox-venv.path, which
# deploy/local/with-env.sh exports as SANDBOX_VENV.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

REQ="$ROOT/requirements-sandbox.txt"
SANDBOX_HOME="${PIPELENS_SANDBOX_HOME:-/opt/pipelens}"
SANDBOX_VENV="$SANDBOX_HOME/sandbox-$(sha256sum "$REQ" | cut -c1-12)"
STAMP="$SANDBOX_VENV/.installed"
mkdir -p "$SANDBOX_HOME"
chmod 755 "$SANDBOX_HOME"
printf '%s\n' "$SANDBOX_VENV" >"$LOCAL/sandbox-venv.path"

command -v bwrap >/dev/null || { say "installing bubblewrap (Debian package)"; apt_install bubblewrap; }

# One builder at a time (checkouts with the same pins share the venv).
exec 9>"$SANDBOX_HOME/sandbox.lock"
flock 9
if [[ -f "$STAMP" ]] && cmp -s "$REQ" "$STAMP"; then
    exit 0
fi
say "building the recipe sandbox's virtualenv in $SANDBOX_VENV (numpy, pandas, matplotlib)"
log="$LOG_DIR/install-sandbox.log"
tmp="$SANDBOX_VENV.tmp"
rm -rf "$tmp"
# Debian's own Python (/usr/bin/python3.11, not a pyenv or other build under a home
# directory): the sandbox then needs only /usr read-only beside the venv.
[[ -x /usr/bin/python3.11 ]] || apt_install python3.11 python3.11-venv
/usr/bin/python3.11 -c "import ensurepip" 2>/dev/null || apt_install python3.11-venv
/usr/bin/python3.11 -m venv "$tmp" >>"$log" 2>&1 || { tail_log "$log"; die "sandbox: venv failed"; }
"$tmp/bin/pip" install -q --disable-pip-version-check -r "$REQ" >>"$log" 2>&1 ||
    { tail_log "$log"; die "sandbox: pip install -r requirements-sandbox.txt failed"; }
# matplotlib builds its font cache on first import: do it now, read-only in the sandbox later.
MPLCONFIGDIR="$tmp/mplconfig" "$tmp/bin/python" -c "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot" >>"$log" 2>&1 ||
    { tail_log "$log"; die "sandbox: importing matplotlib failed"; }
cp "$REQ" "$tmp/.installed"
chmod -R a+rX "$tmp"
rm -rf "$SANDBOX_VENV"
mv "$tmp" "$SANDBOX_VENV"
say "recipe sandbox ready: $(bwrap --version)"
