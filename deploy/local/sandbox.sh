#!/usr/bin/env bash
# The recipe sandbox (docs/recipes.md): bubblewrap (Debian's `bwrap`) and the
# sandbox's own virtualenv (.local/sandbox-venv, pins in requirements-sandbox.txt).
# Called by `make sandbox` (a prerequisite of `make test` and `make run`);
# idempotent: a venv whose pins match is reused.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SANDBOX_VENV="$LOCAL/sandbox-venv"
REQ="$ROOT/requirements-sandbox.txt"
STAMP="$SANDBOX_VENV/.installed"

command -v bwrap >/dev/null || { say "installing bubblewrap (Debian package)"; apt_install bubblewrap; }

# One builder at a time (worktrees share .local/).
exec 9>"$LOCAL/sandbox-venv.lock"
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
rm -rf "$SANDBOX_VENV"
mv "$tmp" "$SANDBOX_VENV"
say "recipe sandbox ready: $(bwrap --version)"
