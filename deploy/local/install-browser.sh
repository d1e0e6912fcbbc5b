#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it through
# executable_path; Playwright's own browser downloads are not used).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium (Debian package)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
