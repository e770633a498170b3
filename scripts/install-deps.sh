#!/usr/bin/env bash
# Installs what tusk needs to build and test, from Debian packages.
# Idempotent: installs only what is missing. Needs root (or sudo) for apt-get.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  librocksdb-dev libsnappy-dev libssl-dev libabsl-dev libgflags-dev libgoogle-glog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  librdkafka-dev kcat libarchive-dev libyaml-cpp-dev libcurl4-openssl-dev
  prometheus-cpp-dev libcivetweb-dev nlohmann-json3-dev libmicrohttpd-dev libexpat1-dev
  python3 procps bubblewrap util-linux clang-format openssl
  prometheus
  awscli python3-botocore
  # The S3 gateway's tests: real clients.
  python3-boto3 s3cmd rclone s3fs fuse3
)
# Node.js and npm run s3rver, the S3 server of the tests; a machine that has
# them already (any recent version) keeps its own.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi
if [[ "${1:-}" == "--bench" ]]; then
  PACKAGES+=(borgbackup time wrk hey)
fi
# Images and pods (scripts/build-image.sh, tuskd --runners podman and the pod
# tests): podman with runc and the cgroupfs manager, images from mmdebstrap.
PACKAGES+=(mmdebstrap podman runc uidmap)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
