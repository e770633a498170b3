#!/usr/bin/env bash
# PFS benchmarks: tusk and its baselines side by side, on the same disk, in one run.
# Prints a markdown table (the one in benchmarks/README.md comes from this script).
#
#   benchmarks/run_pfs.sh                 # everything (needs ~8 GB free disk, ~5 min)
#   SMALL=1 benchmarks/run_pfs.sh         # smaller sizes, for a quick look
#   BENCH_DIR=/mnt/disk benchmarks/run_pfs.sh   # where the data goes (default: build/bench)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup pfs

BIG_MB=1024; SMALL_FILES=100000; DIFF_BIG=1000000; DIFF_SMALL=10000; MICRO=1000
if [[ "${SMALL:-0}" == "1" ]]; then BIG_MB=128; SMALL_FILES=10000; DIFF_BIG=100000; fi


TUSKD_PID=""
start_tuskd() {
  rm -rf "$W/data" "$W/port"
  "$BIN/tuskd" --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/port" 2>>"$W/tuskd.log" &
  TUSKD_PID=$!
  for _ in $(seq 1 200); do [[ -s "$W/port" ]] && break; sleep 0.05; done
  export TUSK_ADDRESS="127.0.0.1:$(cat "$W/port")"
}
stop_tuskd() { if [[ -n "$TUSKD_PID" ]]; then kill "$TUSKD_PID" 2>/dev/null || true; wait "$TUSKD_PID" 2>/dev/null || true; TUSKD_PID=""; fi; }
trap stop_tuskd EXIT
tusk() { "$BIN/tusk" "$@"; }


echo "== data: ${BIG_MB} MiB random file" >&2
head -c $((BIG_MB << 20)) /dev/urandom >"$W/big.bin"
sync

echo "== put file (${BIG_MB} MiB)" >&2
start_tuskd
tusk create repo big >/dev/null
t0=$(now); tusk put file big@master:/big.bin -f "$W/big.bin" >/dev/null; t1=$(now)
tusk_put=$(elapsed "$t0" "$t1")
put_rss=$(rss_kib "$TUSKD_PID")
# Get right after the put, before the baselines' writes are in flight. Packs
# are written with O_DIRECT, so the first get reads them from the disk; the
# second finds them in the page cache.
t0=$(now); tusk get file big@master:/big.bin >/dev/null; t1=$(now)
tusk_get_cold=$(elapsed "$t0" "$t1")
t0=$(now); tusk get file big@master:/big.bin >/dev/null; t1=$(now)
tusk_get=$(elapsed "$t0" "$t1")
t0=$(now); dd if="$W/big.bin" of="$W/dd.out" bs=1M conv=fsync status=none; t1=$(now)
dd_put=$(elapsed "$t0" "$t1"); rm -f "$W/dd.out"
export BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
borg init --encryption=none "$W/borg" >/dev/null 2>&1
t0=$(now); borg create "$W/borg::a" "$W/big.bin"; t1=$(now)
borg_put=$(elapsed "$t0" "$t1"); rm -rf "$W/borg"
mbps() { python3 -c "print(f'{$BIG_MB * 1.048576 / $1:.0f} MB/s')"; }
row "put file ${BIG_MB} MiB vs dd conv=fsync" "$(mbps "$tusk_put")" "$(mbps "$dd_put")" "$(ratio "$dd_put" "$tusk_put")" "target >= 0.5"
row "put file ${BIG_MB} MiB vs borg create (no encryption)" "$(mbps "$tusk_put")" "$(mbps "$borg_put")" "$(ratio "$borg_put" "$tusk_put")" "target >= 2"
row "tuskd peak RSS during the put" "$((put_rss / 1024)) MiB" "-" "-" "target < 256 MiB"

echo "== re-put with 1 MiB changed in the middle" >&2
cp "$W/big.bin" "$W/big2.bin"
head -c $((1 << 20)) /dev/urandom | dd of="$W/big2.bin" bs=1M seek=$((BIG_MB / 2)) conv=notrunc status=none
tusk put file big@master:/big.bin -f "$W/big2.bin" --json >"$W/reput.json"
new_bytes=$(python3 -c "import json; print(json.load(open('$W/reput.json'))['new_bytes'])")
row "re-put with 1 MiB changed: new stored data" "$(python3 -c "print(f'{$new_bytes / 1048576:.1f} MiB')")" "-" "-" "target < 8 MiB"

echo "== get file (${BIG_MB} MiB)" >&2
# Writing 1 GiB into the page cache is slow while earlier writes are still
# being flushed: start both from a synced state.
sync; sleep 1
t0=$(now); cat "$W/big.bin" >"$W/cat.out"; t1=$(now)
cat_file=$(elapsed "$t0" "$t1"); rm -f "$W/cat.out"
sync; sleep 1
t0=$(now); tusk get file big@master:/big.bin -o "$W/got.bin"; t1=$(now)
tusk_get_file=$(elapsed "$t0" "$t1"); rm -f "$W/got.bin"
gbps() { python3 -c "print(f'{$BIG_MB * 1.048576 / 1000 / $1:.2f} GB/s')"; }
row "get file ${BIG_MB} MiB to /dev/null, first read (packs on disk)" "$(gbps "$tusk_get_cold")" "-" "-" "target >= 1 GB/s"
row "get file ${BIG_MB} MiB to /dev/null, again (packs in page cache)" "$(gbps "$tusk_get")" "-" "-" "target >= 1 GB/s"
row "get file ${BIG_MB} MiB -o file vs cat to a file" "$(gbps "$tusk_get_file")" "$(gbps "$cat_file")" "$(ratio "$cat_file" "$tusk_get_file")" "same disk"
stop_tuskd

echo "== put file -r of $SMALL_FILES files of 1 KiB" >&2
python3 - "$W/small" "$SMALL_FILES" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
per_dir = 1000
for i in range(n):
    d = os.path.join(root, "d%04d" % (i // per_dir))
    if i % per_dir == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%06d" % i), "wb") as f:
        f.write(os.urandom(1024))
PY
sync
start_tuskd
tusk create repo small >/dev/null
t0=$(now); tusk put file -r small@master:/ -f "$W/small" >/dev/null; t1=$(now)
tusk_small=$(elapsed "$t0" "$t1")
stop_tuskd
cp -r "$W/small" "$W/gitrepo"
( cd "$W/gitrepo" && git init -q && git config user.email bench@example.com && git config user.name bench )
t0=$(now); ( cd "$W/gitrepo" && git add -A && git commit -qm bench ); t1=$(now)
git_small=$(elapsed "$t0" "$t1"); rm -rf "$W/gitrepo"
fps() { python3 -c "print(f'{$SMALL_FILES / $1:.0f} files/s')"; }
row "put file -r $SMALL_FILES x 1 KiB vs git add -A && git commit" "$(fps "$tusk_small")" "$(fps "$git_small")" "$(ratio "$git_small" "$tusk_small")" "target >= 20,000 files/s and > 1"

echo "== $MICRO micro-commits from one gRPC client" >&2
start_tuskd
"$BIN/pfs_bench_client" microcommits --address "$TUSK_ADDRESS" --repo micro --count "$MICRO" >"$W/micro.json"
rate=$(python3 -c "import json; print(json.load(open('$W/micro.json'))['commits_per_s'])")
p99=$(python3 -c "import json; print(json.load(open('$W/micro.json'))['p99_ms'])")
row "$MICRO micro-commits: StartCommit, PutFile 100 B, FinishCommit (3 round trips; synced)" "$rate commits/s" "-" "-" "target >= 1,000/s; p99 ${p99} ms"
"$BIN/pfs_bench_client" microcommits --address "$TUSK_ADDRESS" --repo micro1 --count "$MICRO" --one-stream 1 >"$W/micro1.json"
rate=$(python3 -c "import json; print(json.load(open('$W/micro1.json'))['commits_per_s'])")
p99=$(python3 -c "import json; print(json.load(open('$W/micro1.json'))['p99_ms'])")
row "$MICRO micro-commits: one PutFile stream the server starts and finishes a commit around (1 round trip; synced)" "$rate commits/s" "-" "-" "target >= 1,000/s; p99 ${p99} ms"

echo "== diff of 10 changed files: $DIFF_SMALL vs $DIFF_BIG files" >&2
"$BIN/pfs_bench_client" diff --address "$TUSK_ADDRESS" --repo dsmall --files "$DIFF_SMALL" --changed 10 --repeat 30 >"$W/dsmall.json"
"$BIN/pfs_bench_client" diff --address "$TUSK_ADDRESS" --repo dbig --files "$DIFF_BIG" --changed 10 --repeat 30 >"$W/dbig.json"
stop_tuskd
ds=$(python3 -c "import json; print(json.load(open('$W/dsmall.json'))['diff_ms_median'])")
db=$(python3 -c "import json; print(json.load(open('$W/dbig.json'))['diff_ms_median'])")
row "diff, 10 files changed, in $DIFF_BIG files vs in $DIFF_SMALL files" "$db ms" "$ds ms" "$(ratio "$db" "$ds")" "target < 10 ms and ratio < 3"

echo
echo "| benchmark | tusk | baseline | ratio (tusk faster when > 1; big/small for diff) | target |"
echo "|---|---|---|---|---|"
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r); $(date -u +%Y-%m-%d)"
rm -rf "$W"
