#!/usr/bin/env bash
# This build's tuskd against another build's (a regression check after a
# restructuring), side by side on the same disk, interleaved run by run:
# micro-commits per second in both forms (one PutFile stream; StartCommit,
# PutFile, FinishCommit; this build's pfs_bench_client drives both), and with
# each build's own tusk: put and get of a big file, put -r of small files.
#
#   BASE_BIN=../base/build/bin benchmarks/run_compare.sh          # 3 runs
#   RUNS=5 MICRO=2000 BIG_MB=512 BASE_BIN=... benchmarks/run_compare.sh
#
# A base build: git worktree add ../base <rev> && (cd ../base &&
#   cmake -S . -B build -G Ninja && ninja -C build tuskd tusk)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
: "${BASE_BIN:?set BASE_BIN to the bin directory of the other build}"
bench_setup compare
RUNS="${RUNS:-3}"; MICRO="${MICRO:-1000}"; BIG_MB="${BIG_MB:-256}"; FILES="${FILES:-20000}"

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
python3 - "$W/small" "$FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "d%03d" % (i % 100))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(1024))
PY
declare -A one three put get small
for run in $(seq 1 "$RUNS"); do
  for side in base this; do
    bin="$BIN"; [[ "$side" == base ]] && bin="$BASE_BIN"
    start_tuskd "$bin"
    "$BIN/pfs_bench_client" microcommits --address "$ADDR" --repo m1 --count "$MICRO" --one-stream 1 >"$W/one.json"
    "$BIN/pfs_bench_client" microcommits --address "$ADDR" --repo m3 --count "$MICRO" >"$W/three.json"
    "$bin/tusk" --address "$ADDR" create repo big >/dev/null
    sync
    t0=$(now); "$bin/tusk" --address "$ADDR" put file big@master:/big.bin -f "$W/big.bin" >/dev/null; t1=$(now)
    g0=$(now); "$bin/tusk" --address "$ADDR" get file big@master:/big.bin >/dev/null; g1=$(now)
    "$bin/tusk" --address "$ADDR" create repo small >/dev/null
    s0=$(now); "$bin/tusk" --address "$ADDR" put file -r small@master:/ -f "$W/small" >/dev/null; s1=$(now)
    stop_tuskd
    one[$side]+="$(json_field "$W/one.json" commits_per_s) "
    three[$side]+="$(json_field "$W/three.json" commits_per_s) "
    put[$side]+="$(mbps "$BIG_MB" "$t0" "$t1") "
    get[$side]+="$(mbps "$BIG_MB" "$g0" "$g1") "
    small[$side]+="$(python3 -c "print(f'{$FILES / ($s1 - $s0):.0f}')") "
    echo "  run $run $side: one-stream $(json_field "$W/one.json" commits_per_s) three-RPC $(json_field "$W/three.json" commits_per_s)" >&2
  done
done
cmp_row() {  # name, base values, this values, unit
  local b t; b=$(median "$2"); t=$(median "$3")
  row "$1 (runs: base ${2% }; this ${3% })" "$t $4" "$b $4" "$(ratio "$t" "$b")" "no regression: ratio ~1 within the runs' spread"
}
cmp_row "$MICRO micro-commits, one PutFile stream (median)" "${one[base]}" "${one[this]}" "commits/s"
cmp_row "$MICRO micro-commits, StartCommit + PutFile + FinishCommit (median)" "${three[base]}" "${three[this]}" "commits/s"
cmp_row "put file $BIG_MB MiB (median)" "${put[base]}" "${put[this]}" "MB/s"
cmp_row "get file $BIG_MB MiB to /dev/null, right after the put (median)" "${get[base]}" "${get[this]}" "MB/s"
cmp_row "put file -r of $FILES x 1 KiB (median)" "${small[base]}" "${small[this]}" "files/s"
print_table
