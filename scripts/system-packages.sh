#!/usr/bin/env bash
# Install the system packages the test suite uses: a C compiler (shim, fake vendor libraries) and podman
# (the real CDI consumer). Only as root and only what is missing, so re-runs cost nothing.
set -euo pipefail
wanted=()
command -v gcc >/dev/null || wanted+=(gcc libc6-dev)
command -v podman >/dev/null || wanted+=(podman)
command -v runc >/dev/null || wanted+=(runc)
[[ -x /bin/busybox ]] || wanted+=(busybox-static)
command -v kubectl >/dev/null || true   # optional: kubectl tests skip without it
if ((${#wanted[@]} == 0)); then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
    echo "note: not root, cannot install ${wanted[*]}; tests that need them will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
