#!/usr/bin/env bash
# Configures and builds tusk into build/ (or $TUSK_BUILD_DIR). Binaries: build/bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${TUSK_BUILD_DIR:-build}"
GENERATOR=()
if command -v ninja >/dev/null; then
  GENERATOR=(-G Ninja)
fi
if [[ ! -f "$BUILD_DIR/CMakeCache.txt" ]]; then
  cmake -S . -B "$BUILD_DIR" "${GENERATOR[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
fi
cmake --build "$BUILD_DIR" -j "${TUSK_JOBS:-2}"
