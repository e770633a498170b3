#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# s3rver (npm), pinned by tests/s3/package-lock.json.
if [[ ! -x tests/s3/node_modules/.bin/s3rver ]]; then
  (cd tests/s3 && npm ci --no-audit --no-fund --loglevel=error)
fi
scripts/build.sh
# The Kubernetes API server of kube_test, built once per machine into a cache
# outside the checkout (about 12 minutes the first time, nothing after).
scripts/build-kube.sh >/dev/null
BUILD_DIR="${TUSK_BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 "$@"
