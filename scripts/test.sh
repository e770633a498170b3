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
BUILD_DIR="${TUSK_BUILD_DIR:-build}"
ctest --test-dir "$BUILD_DIR" --output-on-failure -j 2 "$@"
