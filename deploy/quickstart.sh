#!/usr/bin/env bash
# README command (1): start kithd on its embedded SQLite default with a development certificate.
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh
cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)" --target kithd
exec build/server/kithd --listen 127.0.0.1:8443 --data "${KITH_DATA:-var/kith}" --dev-cert "$@"
