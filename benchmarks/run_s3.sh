#!/usr/bin/env bash
# S3 benchmarks, against s3rver on loopback, side by side in one run:
#   1. put file of a 1 GiB file: tusk (tuskd with --object-store s3://...)
#      against `s3cmd put` and `aws s3 cp` of the same file to the same server.
#   2. put file -r of 10,000 small files: object-store PUTs per MiB (tuskd's
#      own counters) and time against `s3cmd sync` of the same tree.
#   3. get of a file already in tuskd's cache: S3 requests made (none
#      expected), then the same get with s3rver stopped.
# Prints a markdown table (the one in benchmarks/README.md comes from here).
#
#   benchmarks/run_s3.sh                                   # full sizes, 3 runs
#   MIB=256 FILES=2000 RUNS=1 benchmarks/run_s3.sh         # a quick run
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup s3

RUNS=${RUNS:-3}
MIB=${MIB:-1024}
FILES=${FILES:-10000}
(cd "$ROOT/tests/s3" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1 || npm install --silent --no-audit --no-fund >/dev/null)
S3RVER="$ROOT/tests/s3/node_modules/.bin/s3rver"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ENDPOINT="http://127.0.0.1:$PORT"
start_s3rver() {
  # s3rver's list continuation tokens use DES: Node's OpenSSL 3 legacy provider.
  NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$W/s3" -a 127.0.0.1 -p "$PORT" --configure-bucket bench >>"$W/s3rver.log" 2>&1 &
  S3PID=$!
  PIDS+=($S3PID)
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$ENDPOINT/" && return 0
    sleep 0.1
  done
  echo "s3rver did not start; see $W/s3rver.log" >&2
  exit 1
}
start_s3rver

cat >"$W/s3cfg" <<EOF
[default]
access_key = S3RVER
secret_key = S3RVER
host_base = 127.0.0.1:$PORT
host_bucket = 127.0.0.1:$PORT
use_https = False
signature_v2 = False
bucket_location = us-east-1
progress_meter = False
EOF
s3cmd() { command s3cmd -c "$W/s3cfg" "$@"; }
aws() { command /usr/bin/aws --endpoint-url "$ENDPOINT" "$@"; }

# A tuskd over a fresh data directory and a fresh prefix (nothing to dedup).
TUSKD_PID=""
start_tuskd() {
  local name=$1
  rm -f "$W/port"
  "$BIN/tuskd" --data-dir "$W/$name" --object-store "s3://bench/$name" --s3-endpoint "$ENDPOINT" \
    --listen 127.0.0.1:0 --port-file "$W/port" --gc-interval 0 2>>"$W/tuskd.log" &
  TUSKD_PID=$!
  PIDS+=($TUSKD_PID)
  for _ in $(seq 1 200); do [[ -s "$W/port" ]] && break; sleep 0.05; done
  export TUSK_ADDRESS="127.0.0.1:$(cat "$W/port")"
}
stop_tuskd() { kill "$TUSKD_PID"; wait "$TUSKD_PID" 2>/dev/null || true; }
tusk() { "$BIN/tusk" "$@"; }
stat_of() {  # stat_of FIELD: a counter of tusk admin stats
  tusk admin stats --json | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', '0'))"
}
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
mbs() { python3 -c "print(f'{$1 * 1048576 / $2 / 1e6:.0f} MB/s')"; }

# --- 1. one large file -------------------------------------------------------
echo "== 1. put of a $MIB MiB file" >&2
head -c $((MIB << 20)) /dev/urandom >"$W/big.bin"
cat "$W/big.bin" >/dev/null  # every tool reads it from the page cache
t_tusk=(); t_s3cmd=(); t_aws=()
for r in $(seq 1 "$RUNS"); do
  t0=$(now); s3cmd put "$W/big.bin" "s3://bench/s3cmd-$r/big.bin" >/dev/null; t1=$(now)
  t_s3cmd+=("$(elapsed "$t0" "$t1")")
  t0=$(now); aws s3 cp --only-show-errors "$W/big.bin" "s3://bench/aws-$r/big.bin"; t1=$(now)
  t_aws+=("$(elapsed "$t0" "$t1")")
  start_tuskd "tusk-big-$r"
  tusk create repo big >/dev/null
  t0=$(now); tusk put file big@master:/big.bin -f "$W/big.bin" >/dev/null; t1=$(now)
  t_tusk+=("$(elapsed "$t0" "$t1")")
  puts=$(stat_of puts)
  stop_tuskd
  echo "  run $r: tusk ${t_tusk[-1]} s ($puts PUT requests), s3cmd ${t_s3cmd[-1]} s, aws ${t_aws[-1]} s" >&2
  # Free the server's disk before the next run.
  rm -rf "$W/s3/bench/s3cmd-$r" "$W/s3/bench/aws-$r" "$W/s3/bench/tusk-big-$r" "$W/tusk-big-$r"
done
m_tusk=$(median "${t_tusk[@]}"); m_s3cmd=$(median "${t_s3cmd[@]}"); m_aws=$(median "${t_aws[@]}")
runs="s: tusk ${t_tusk[*]}; s3cmd ${t_s3cmd[*]}; aws ${t_aws[*]}"
row "put file of $MIB MiB to s3rver vs s3cmd put (median of $RUNS; $runs)" \
  "$(mbs "$MIB" "$m_tusk")" "$(mbs "$MIB" "$m_s3cmd")" "$(ratio "$m_s3cmd" "$m_tusk")" ">= 0.8"
row "the same vs aws s3 cp (multipart, 10 threads)" \
  "$(mbs "$MIB" "$m_tusk")" "$(mbs "$MIB" "$m_aws")" "$(ratio "$m_aws" "$m_tusk")" ">= 0.8 (either)"
rm -f "$W/big.bin"

# --- 2. many small files -------------------------------------------------------
echo "== 2. put file -r of $FILES small files" >&2
python3 - "$W/tree" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(5)
for i in range(n):
    d = os.path.join(root, f"d{i % 50:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.txt"), "wb") as f:
        f.write(i.to_bytes(8, "little") + os.urandom(rng.randint(1024, 16384)))
EOF
TREE_BYTES=$(du -sb --apparent-size "$W/tree" | cut -f1)
TREE_MIB=$(python3 -c "print(f'{$TREE_BYTES / 1048576:.1f}')")
t_tusk=(); t_sync=(); per_mib=()
for r in $(seq 1 "$RUNS"); do
  t0=$(now); s3cmd sync --no-progress -q "$W/tree/" "s3://bench/sync-$r/" >/dev/null; t1=$(now)
  t_sync+=("$(elapsed "$t0" "$t1")")
  start_tuskd "tusk-tree-$r"
  tusk create repo tree >/dev/null
  p0=$(stat_of puts)
  t0=$(now); tusk put file tree@master:/ -f "$W/tree" -r >/dev/null; t1=$(now)
  p1=$(stat_of puts)
  t_tusk+=("$(elapsed "$t0" "$t1")")
  n=$(tusk inspect commit tree@master --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_count"])')
  [[ "$n" == "$FILES" ]] || { echo "the commit holds $n files, expected $FILES" >&2; exit 1; }
  per_mib+=("$(python3 -c "print(f'{($p1 - $p0) / $TREE_MIB:.3f}')")")
  stop_tuskd
  echo "  run $r: tusk ${t_tusk[-1]} s, $((p1 - p0)) PUTs for $TREE_MIB MiB; s3cmd sync ${t_sync[-1]} s" >&2
  rm -rf "$W/s3/bench/sync-$r" "$W/s3/bench/tusk-tree-$r" "$W/tusk-tree-$r"
done
m_tusk=$(median "${t_tusk[@]}"); m_sync=$(median "${t_sync[@]}")
row "put file -r of $FILES files ($TREE_MIB MiB): object-store PUTs per MiB (runs: ${per_mib[*]})" \
  "$(median "${per_mib[@]}")" "s3cmd sync: $(python3 -c "print(f'{$FILES / $TREE_MIB:.0f}')")" "-" "<= 1"
row "the same, time vs s3cmd sync (median of $RUNS; s: tusk ${t_tusk[*]}; s3cmd ${t_sync[*]})" \
  "${m_tusk} s" "${m_sync} s" "$(ratio "$m_sync" "$m_tusk")" ">= 5"

# --- 3. a read from the cache --------------------------------------------------
echo "== 3. get of a cached file" >&2
head -c $((256 << 20)) /dev/urandom >"$W/cached.bin"
start_tuskd "tusk-cache"
tusk create repo c >/dev/null
tusk put file c@master:/cached.bin -f "$W/cached.bin" >/dev/null
g0=$(stat_of gets)
t0=$(now); tusk get file c@master:/cached.bin | cmp - "$W/cached.bin"; t1=$(now)
g1=$(stat_of gets)
t2=$(now); tusk get file c@master:/cached.bin | cmp - "$W/cached.bin"; t3=$(now)
g2=$(stat_of gets)
cold=$(elapsed "$t0" "$t1"); warm=$(elapsed "$t2" "$t3")
# With s3rver gone, the cached file still reads.
kill "$S3PID"; wait "$S3PID" 2>/dev/null || true
tusk get file c@master:/cached.bin | cmp - "$W/cached.bin"
g3=$(stat_of gets)
stop_tuskd
echo "  first get $cold s ($((g1 - g0)) GETs), second $warm s ($((g2 - g1)) GETs), with s3rver stopped: $((g3 - g2)) GETs, content equal" >&2
row "get of a 256 MiB file already in the cache: S3 requests (first get: $((g1 - g0)) GETs in $cold s; cached: $warm s; also read with s3rver stopped)" \
  "$((g2 - g1)) GET" "-" "-" "0 requests"

print_table
