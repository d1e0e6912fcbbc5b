#!/usr/bin/env bash
# `make bench [B=name]`: run bench/<name>.py, or every benchmark in turn.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ $# -gt 0 ] && [ -n "$1" ]; then
  names=("$1")
else
  names=()
  for f in bench/*.py; do
    n="$(basename "$f" .py)"
    [[ "$n" == _* ]] || names+=("$n")
  done
fi
for name in "${names[@]}"; do
  [ -f "bench/$name.py" ] || { echo "no benchmark bench/$name.py" >&2; exit 2; }
  echo "== bench/$name.py"
  .venv/bin/python "bench/$name.py"
done
