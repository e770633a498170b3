#!/usr/bin/env bash
# Builds the tusk image (tuskd, tusk, tusk-ingest, tusk-runner and
# tusk-exec-agent on Debian 12, with the runtime libraries they load) into
# podman's local storage, from Debian's packages alone:
#
#   1. the base: mmdebstrap makes a Debian 12 root file system with the
#      packages that own the libraries the binaries load (ldd, dpkg -S), and
#      podman imports it as localhost/tusk-base:<hash of that list> (made once
#      per list);
#   2. the image: `podman build -f images/Containerfile` puts the stripped
#      binaries on that base.
#
#   scripts/build-image.sh [IMAGE]          # default localhost/tusk:dev
#
# No image registry is needed. Where one is reachable, images/Containerfile
# says how to start from debian:12-slim instead.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE="${1:-localhost/tusk:dev}"
BIN="${TUSK_BUILD_DIR:-build}/bin"
BINARIES=(tuskd tusk tusk-ingest tusk-runner tusk-exec-agent)
for b in "${BINARIES[@]}"; do
  [[ -x "$BIN/$b" ]] || { echo "build-image: $BIN/$b is missing (scripts/build.sh first)" >&2; exit 1; }
done
for tool in mmdebstrap podman; do
  command -v "$tool" >/dev/null || { echo "build-image: $tool is not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

# The Debian package of each shared library the binaries load.
packages=$(for b in "${BINARIES[@]}"; do { ldd "$BIN/$b" 2>/dev/null || true; } | awk '/=>/ {print $3}'; done |
  sort -u | while read -r lib; do
    owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null ||
      dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true)
    [[ -n "$owner" ]] || { echo "build-image: no package owns $lib" >&2; exit 1; }
    echo "${owner%%:*}"
  done | sort -u | paste -sd, -)
# bubblewrap: local runners' sandbox inside the image (tuskd --runners local).
packages="$packages,ca-certificates,bubblewrap"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base="localhost/tusk-base:$(sha256sum <<<"$packages" | cut -c1-12)"
if ! podman image exists "$base"; then
  echo "build-image: base $base: Debian 12 with $(tr , '\n' <<<"$packages" | wc -l) packages" >&2
  mmdebstrap --variant=essential --include="$packages" bookworm "$work/rootfs.tar" \
    >"$work/mmdebstrap.log" 2>&1 || { tail -20 "$work/mmdebstrap.log" >&2; exit 1; }
  podman import --quiet \
    --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$work/rootfs.tar" "$base" >/dev/null
  rm -f "$work/rootfs.tar"
fi
mkdir -p "$work/bin"
cp "${BINARIES[@]/#/$BIN/}" "$work/bin/"
strip --strip-debug "$work"/bin/*  # the build keeps debug info; the image need not
tr , '\n' <<<"$packages" >"$work/packages.txt"
podman build --quiet --build-arg "BASE=$base" -f images/Containerfile -t "$IMAGE" "$work" \
  >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
echo "build-image: $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec))" >&2
