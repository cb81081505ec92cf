#!/usr/bin/env bash
# The console's browser tests drive Debian's Chromium (never a browser download of the test library's own).
# Installs the `chromium` package when it is missing and we are root on Debian; otherwise says what to do.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing Debian's chromium for the console's browser tests"
  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "ERROR: the console tests need /usr/bin/chromium (Debian package 'chromium')." >&2
  exit 1
fi
