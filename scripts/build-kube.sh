#!/usr/bin/env bash
# Builds a real Kubernetes API server for the tests, once per machine.
#
# Debian ships Kubernetes 1.20 only as a source package. This script fetches it
# with `apt-get source kubernetes` (adding a deb-src entry for Debian's own
# archive if the machine has none), builds kube-apiserver,
# kube-controller-manager and kubectl with Debian's Go, offline (everything is
# vendored), and keeps the binaries in a cache outside the checkout:
#
#   ${TUSK_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tusk/kubernetes-1.20}/bin
#
# A second run finds them there and does nothing. The last line printed is the
# bin directory. About 10 minutes on 2 cores the first time.
#
# Usage: scripts/build-kube.sh [--print-dir]
#   --print-dir  print the bin directory and exit (0 if built, 1 if not)
set -euo pipefail

CACHE="${TUSK_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tusk/kubernetes-1.20}"
BIN="$CACHE/bin"
WANT=(kube-apiserver kube-controller-manager kubectl)

built() {
  for b in "${WANT[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

if [[ "${1:-}" == "--print-dir" ]]; then
  echo "$BIN"
  built
  exit $?
fi
if built; then
  echo "$BIN"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need=()
for p in golang-go etcd-server jq rsync dpkg-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ! apt-get source --print-uris kubernetes >/dev/null 2>&1; then
  # No deb-src for Debian's archive yet: add one beside the deb entries.
  echo "build-kube: adding a deb-src entry for Debian's archive" >&2
  $SUDO tee /etc/apt/sources.list.d/tusk-deb-src.sources >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  $SUDO apt-get update -qq
fi
if [[ ${#need[@]} -gt 0 ]]; then
  echo "build-kube: installing ${need[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

mkdir -p "$CACHE/src"
cd "$CACHE/src"
if ! ls -d kubernetes-*/ >/dev/null 2>&1; then
  echo "build-kube: fetching Debian's kubernetes source package" >&2
  apt-get source -qq kubernetes >/dev/null
fi
src="$(ls -d "$CACHE"/src/kubernetes-*/ | head -1)"
echo "build-kube: building ${WANT[*]} in $src (about 10 minutes on 2 cores)" >&2
cd "$src"
start=$(date +%s)
# Debian's Go, the vendored modules, no network.
GOFLAGS=-mod=vendor GOPROXY=off GO111MODULE=on \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl" \
  KUBE_BUILD_PLATFORMS=linux/amd64 >"$CACHE/build.log" 2>&1 || {
  tail -40 "$CACHE/build.log" >&2
  echo "build-kube: make failed; the whole log is $CACHE/build.log" >&2
  exit 1
}
mkdir -p "$BIN"
for b in "${WANT[@]}"; do
  f="$(find _output -type f -name "$b" -perm -u+x | head -1)"
  [[ -n "$f" ]] || { echo "build-kube: $b was not built" >&2; exit 1; }
  cp "$f" "$BIN/$b.tmp" && mv "$BIN/$b.tmp" "$BIN/$b"
done
echo "build-kube: built in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
