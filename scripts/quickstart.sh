#!/usr/bin/env bash
# Quickstart: installs dependencies, builds tusk, starts tuskd on the embedded
# default (a local data directory), and walks through versioning some data.
#
#   scripts/quickstart.sh            # demo in a temporary directory, then stop tuskd
#   KEEP=1 scripts/quickstart.sh     # leave tuskd running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/install-deps.sh
scripts/build.sh >/dev/null
BIN="$ROOT/${TUSK_BUILD_DIR:-build}/bin"

WORK=$(mktemp -d -t tusk-quickstart-XXXXXX)
DATA="$WORK/data"
"$BIN/tuskd" --data-dir "$DATA" --listen 127.0.0.1:0 --port-file "$WORK/port" 2>"$WORK/tuskd.log" &
TUSKD_PID=$!
KAFKA_PID=""
INGEST_PID=""
cleanup() {
  for p in $INGEST_PID $KAFKA_PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  if [[ "${KEEP:-0}" != "1" ]]; then
    kill "$TUSKD_PID" 2>/dev/null || true
    wait "$TUSKD_PID" 2>/dev/null || true
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
for _ in $(seq 1 100); do [[ -s "$WORK/port" ]] && break; sleep 0.05; done
export TUSK_ADDRESS="127.0.0.1:$(cat "$WORK/port")"
tusk() { "$BIN/tusk" "$@"; }
step() { printf '\n\033[1m$ tusk %s\033[0m\n' "$*"; tusk "$@"; }

echo "tuskd is serving on $TUSK_ADDRESS with data in $DATA"

# Some data: a directory of CSV files.
mkdir -p "$WORK/sales/2026"
for m in 01 02 03; do
  { echo "day,amount"; for d in $(seq 1 28); do echo "$d,$((RANDOM % 1000))"; done; } >"$WORK/sales/2026/$m.csv"
done
head -c 5000000 /dev/urandom >"$WORK/sales/archive.bin"

step create repo sales --description "daily sales exports"
step put file -r sales@master:/ -f "$WORK/sales"
step list file sales@master:/2026
step glob file 'sales@master:/**/*.csv'

# A second commit: a new month and a changed file.
{ echo "day,amount"; echo "1,42"; } >"$WORK/sales/2026/04.csv"
echo "29,999" >>"$WORK/sales/2026/03.csv"
step put file -r sales@master:/ -f "$WORK/sales"
step diff commit sales@master
step list commit sales@master

# Branch from the first commit, without copying anything.
step create branch sales@audit --head master^
step diff commit sales@master sales@audit
# Undo the last commit on master with a revert (history is kept).
step revert sales@master --to master^
step inspect commit sales@master

# Streaming: a Kafka topic into micro-commits, exactly once. tusk-dev-kafka is
# a Kafka-protocol server on loopback (librdkafka's mock cluster); kcat, an
# independent Kafka client, produces the events.
"$BIN/tusk-dev-kafka" --topic clicks --partitions 2 --bootstrap-file "$WORK/kafka" \
  >/dev/null 2>"$WORK/kafka.log" &
KAFKA_PID=$!
for _ in $(seq 1 100); do [[ -s "$WORK/kafka" ]] && break; sleep 0.05; done
KAFKA=$(cat "$WORK/kafka")
step create source clicks --kafka "$KAFKA" --topic clicks --repo clicks --max-latency 200ms \
  --value-format json
"$BIN/tusk-ingest" --source clicks 2>"$WORK/ingest.log" &
INGEST_PID=$!
printf '\n\033[1m$ kcat -P -b %s -t clicks -K: (300 events)\033[0m\n' "$KAFKA"
for i in $(seq 1 300); do echo "user$((i % 7)):{\"page\":\"/p$((i % 13))\",\"n\":$i}"; done |
  kcat -P -b "$KAFKA" -t clicks -K:
# Wait (bounded) until the branch head holds every event.
for _ in $(seq 1 300); do
  got=$(tusk inspect source clicks --json | { grep -o '"committed_offset":"[0-9]*"' || true; } |
    awk -F'"' '{s += $4} END {print s + 0}')
  [[ "$got" == 300 ]] && break
  sleep 0.1
done
step inspect source clicks
step list commit clicks@master
step list file clicks@master:/clicks/0
first=$(tusk list file clicks@master:/clicks/0 --json | head -1 | sed 's/.*"path":"\([^"]*\)".*/\1/')
printf '\n\033[1m$ tusk get file clicks@master:%s | head -3\033[0m\n' "$first"
tusk get file "clicks@master:$first" | head -3
kill "$INGEST_PID"; wait "$INGEST_PID" 2>/dev/null || true; INGEST_PID=""

# A two-stage pipeline over the ingested events: lines per Kafka partition,
# then the total. Runs on the head of clicks now, and on every new commit.
cat > "$WORK/pipelines.yaml" <<'EOF'
pipeline: {name: click-counts}
description: events per Kafka partition (one datum per partition directory)
transform:
  cmd: [sh, -c, "cat $(find $clicks -type f) | wc -l > /pfs/out/$(basename $clicks)"]
input: {pfs: {repo: clicks, glob: "/clicks/*"}}
parallelism_spec: {constant: 2}
---
pipeline: {name: click-total}
transform: {cmd: [sh, -c, "cat /pfs/click-counts/* | awk '{s += $1} END {print s}' > /pfs/out/total"]}
input: {pfs: {repo: click-counts, glob: /}}
EOF
step create pipeline -f "$WORK/pipelines.yaml"
cs=$(tusk inspect commit clicks@master --json | sed 's/.*"commit_set":"\([0-9a-f]*\)".*/\1/')
step wait commitset "$cs"
step list job
step get file click-total@master:/total
step inspect commit click-total@master --provenance

step fsck
echo
if [[ "${KEEP:-0}" == "1" ]]; then
  echo "tuskd keeps running (pid $TUSKD_PID): export TUSK_ADDRESS=$TUSK_ADDRESS"
else
  echo "quickstart done; tuskd stopped."
fi
