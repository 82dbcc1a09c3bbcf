#!/bin/sh
# The report's browser test drives Debian's chromium (no browser download at test time).
set -eu
if [ -x "${NORTHSTAR_CHROMIUM:-/usr/bin/chromium}" ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "Chromium is missing: install Debian's 'chromium' package (needs root)." >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
