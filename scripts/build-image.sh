#!/usr/bin/env bash
# Builds the tusk image (tuskd, tusk, tusk-ingest, tusk-runner and
# tusk-exec-agent on Debian 12, with the runtime libraries they link) into
# podman's local storage, from Debian's packages alone: mmdebstrap makes the
# root file system (no image registry needed), podman imports it.
#
#   scripts/build-image.sh [IMAGE]          # default localhost/tusk:dev
#
# The packages are the ones that own the libraries the binaries load (ldd,
# dpkg -S), so the image follows the build. Where a registry is reachable,
# the same image comes from a Containerfile on debian:12-slim:
#   FROM debian:12-slim
#   RUN apt-get update && apt-get install -y --no-install-recommends <the packages> \
#       && rm -rf /var/lib/apt/lists/*
#   COPY build/bin/ /usr/local/bin/
#   USER 65532:65532
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
mkdir -p "$work/bin"
cp "${BINARIES[@]/#/$BIN/}" "$work/bin/"
strip --strip-debug "$work"/bin/*  # the build keeps debug info; the image need not
echo "build-image: root file system from Debian 12 with $(tr , '\n' <<<"$packages" | wc -l) packages" >&2
mmdebstrap --variant=essential --include="$packages" \
  --customize-hook="copy-in $work/bin/tuskd $work/bin/tusk $work/bin/tusk-ingest $work/bin/tusk-runner $work/bin/tusk-exec-agent /usr/local/bin" \
  --customize-hook='echo "tusk:x:65532:65532:tusk:/var/lib/tusk:/usr/sbin/nologin" >>"$1/etc/passwd"' \
  --customize-hook='echo "tusk:x:65532:" >>"$1/etc/group"' \
  --customize-hook='mkdir -p "$1/var/lib/tusk" && chown 65532:65532 "$1/var/lib/tusk"' \
  bookworm "$work/rootfs.tar" >"$work/mmdebstrap.log" 2>&1 ||
  { tail -20 "$work/mmdebstrap.log" >&2; exit 1; }
podman import --quiet \
  --change 'ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'USER=65532:65532' \
  --change 'WORKDIR=/var/lib/tusk' \
  --change 'ENTRYPOINT=["/usr/local/bin/tuskd"]' \
  "$work/rootfs.tar" "$IMAGE" >/dev/null
echo "build-image: $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec) )" >&2
