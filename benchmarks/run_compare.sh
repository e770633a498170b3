#!/usr/bin/env bash
# This build's tuskd against another build's (a regression check after a
# restructuring), side by side on the same disk, interleaved run by run:
# micro-commits per second in both forms (one PutFile stream; StartCommit,
# PutFile, FinishCommit), and put file of a big file. The same client
# (this build's) drives both servers.
#
#   BASE_BIN=../base/build/bin benchmarks/run_compare.sh          # 3 runs
#   RUNS=5 MICRO=2000 BIG_MB=512 BASE_BIN=... benchmarks/run_compare.sh
#
# A base build: git worktree add ../base <rev> && (cd ../base &&
#   cmake -S . -B build -G Ninja && ninja -C build tuskd tusk)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
: "${BASE_BIN:?set BASE_BIN to the other build's bin directory}"
bench_setup compare
RUNS="${RUNS:-3}"; MICRO="${MICRO:-1000}"; BIG_MB="${BIG_MB:-256}"

TUSKD_PID=""
start_tuskd() {  # $1: bin dir
  rm -rf "$W/data" "$W/port"
  "$1/tuskd" --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/port" --no-local-runners \
    2>>"$W/tuskd.log" &
  TUSKD_PID=$!
  for _ in $(seq 1 200); do [[ -s "$W/port" ]] && break; sleep 0.05; done
  ADDR="127.0.0.1:$(cat "$W/port")"
}
stop_tuskd() { if [[ -n "$TUSKD_PID" ]]; then kill "$TUSKD_PID" 2>/dev/null || true; wait "$TUSKD_PID" 2>/dev/null || true; TUSKD_PID=""; fi; }
trap stop_tuskd EXIT

head -c $((BIG_MB << 20)) /dev/urandom >"$W/big.bin"
declare -A one three put
for run in $(seq 1 "$RUNS"); do
  for side in base this; do
    bin="$BIN"; [[ "$side" == base ]] && bin="$BASE_BIN"
    start_tuskd "$bin"
    "$BIN/pfs_bench_client" microcommits --address "$ADDR" --repo m1 --count "$MICRO" --one-stream 1 >"$W/one.json"
    "$BIN/pfs_bench_client" microcommits --address "$ADDR" --repo m3 --count "$MICRO" >"$W/three.json"
    "$BIN/tusk" --address "$ADDR" create repo big >/dev/null
    sync
    t0=$(now); "$BIN/tusk" --address "$ADDR" put file big@master:/big.bin -f "$W/big.bin" >/dev/null; t1=$(now)
    stop_tuskd
    one[$side]+="$(python3 -c "import json; print(json.load(open('$W/one.json'))['commits_per_s'])") "
    three[$side]+="$(python3 -c "import json; print(json.load(open('$W/three.json'))['commits_per_s'])") "
    put[$side]+="$(python3 -c "print(f'{$BIG_MB * 1.048576 / ($t1 - $t0):.0f}')") "
    echo "  run $run $side: one-stream ${one[$side]##* } three-RPC ${three[$side]##* } put ${put[$side]##* }" >&2
  done
done
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.0f}')" $1; }
cmp_row() {  # name, base values, this values, unit
  local b t; b=$(median "$2"); t=$(median "$3")
  row "$1 (runs: base ${2% }; this ${3% })" "$t $4" "$b $4" "$(ratio "$t" "$b")" "no regression: ratio ~1 within the runs' spread"
}
cmp_row "$MICRO micro-commits, one PutFile stream (median)" "${one[base]}" "${one[this]}" "commits/s"
cmp_row "$MICRO micro-commits, StartCommit + PutFile + FinishCommit (median)" "${three[base]}" "${three[this]}" "commits/s"
cmp_row "put file $BIG_MB MiB (median)" "${put[base]}" "${put[this]}" "MB/s"
print_table
