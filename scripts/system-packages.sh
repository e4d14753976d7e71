#!/usr/bin/env bash
# Install the system packages the test suite uses: a C compiler (shim, fake vendor libraries) and podman
# (the real CDI consumer), openssl and kubectl. Only as root and only what is missing, so re-runs cost nothing.
set -euo pipefail
wanted=()
command -v gcc >/dev/null || wanted+=(gcc libc6-dev)
command -v podman >/dev/null || wanted+=(podman)
command -v runc >/dev/null || wanted+=(runc)
[[ -x /bin/busybox ]] || wanted+=(busybox-static)
command -v openssl >/dev/null || wanted+=(openssl)   # test certificates (webhook, TLS)
optional=()
command -v kubectl >/dev/null || optional+=(kubectl)   # the API server's kubectl tests skip without it
if ((${#wanted[@]} + ${#optional[@]} == 0)); then exit 0; fi
if [[ $(id -u) -ne 0 ]]; then
    echo "note: not root, cannot install ${wanted[*]}; tests that need them will be skipped" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if ((${#wanted[@]})); then
    apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
fi
if ((${#optional[@]})); then
    apt-get install -y -qq --no-install-recommends "${optional[@]}" >/dev/null \
        || echo "note: could not install ${optional[*]}; the tests that use them will be skipped" >&2
fi
