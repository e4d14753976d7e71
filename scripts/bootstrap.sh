#!/usr/bin/env bash
# Create .venv and install XPUShare into it (editable, with the simulation the demo runs; with the
# development tools too when --dev is given).
# Shared by scripts/demo.sh and scripts/test.sh so both set up the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [[ "${1:-}" == "--dev" ]]; then
    .venv/bin/python -m pip install -q -e ".[dev]"
else
    .venv/bin/python -m pip install -q -e ".[sim]"
fi
