#!/bin/sh
# The tests start a throwaway PostgreSQL cluster from the server binaries; install them if absent.
set -eu
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL server binaries are missing: install the 'postgresql' package (needs root)." >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
