#!/usr/bin/env bash
# Set up XPUShare and run the local end-to-end demo on simulated devices: the README's main command.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/system-packages.sh
scripts/bootstrap.sh
exec .venv/bin/xpushare demo "$@"
