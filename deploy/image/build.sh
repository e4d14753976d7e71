#!/usr/bin/env bash
# Build (and push) the multi-arch XPUShare image with docker buildx.
#   deploy/image/build.sh IMAGE[:TAG] [extra buildx flags, e.g. --push or --load]
# PLATFORMS overrides the target platforms (default linux/amd64,linux/arm64).
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${1:?usage: deploy/image/build.sh IMAGE[:TAG] [buildx flags]}"
shift
version="$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n1)"
exec docker buildx build \
    --platform "${PLATFORMS:-linux/amd64,linux/arm64}" \
    --build-arg "VERSION=${version}" \
    -f deploy/image/Dockerfile \
    -t "${image}" \
    "$@" .
