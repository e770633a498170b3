#!/usr/bin/env bash
# The S3 gateway (issue 19) side by side with s3rver on the same machine, in
# one run:
#   1. a 1 GiB object: `aws s3 cp` up and down through tuskd's gateway
#      against the same through s3rver, and against `tusk put file` /
#      `tusk get file` of the same bytes (tusk's own gRPC path).
#   2. 10,000 small objects: `aws s3 sync` up and down, gateway vs s3rver.
#   3. HeadObject and small GETs with `hey`, 64 connections: requests/s and
#      latency p50/p99, gateway vs s3rver.
# Prints a markdown table (the one in benchmarks/README.md comes from here).
#
#   benchmarks/run_s3_gateway.sh                               # full sizes
#   MIB=256 FILES=2000 REQUESTS=5000 RUNS=1 benchmarks/run_s3_gateway.sh
#   PARTS="big hey" benchmarks/run_s3_gateway.sh             # some of the parts
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup s3_gateway

RUNS=${RUNS:-3}
MIB=${MIB:-1024}
FILES=${FILES:-10000}
REQUESTS=${REQUESTS:-20000}
PARTS=${PARTS:-big sync hey}
part() { [[ " $PARTS " == *" $1 "* ]]; }
(cd "$ROOT/tests/s3" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1 || npm install --silent --no-audit --no-fund >/dev/null)
S3RVER="$ROOT/tests/s3/node_modules/.bin/s3rver"
export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
S3PORT=$(free_port)
S3RVER_URL="http://127.0.0.1:$S3PORT"
NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" -d "$W/s3" -a 127.0.0.1 -p "$S3PORT" \
  --configure-bucket bench >>"$W/s3rver.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "$S3RVER_URL/" && break; sleep 0.1; done

"$BIN/tuskd" --data-dir "$W/tusk" --listen 127.0.0.1:0 --port-file "$W/port" \
  --s3-listen 127.0.0.1:0 --s3-port-file "$W/s3port" --gc-interval 0 --runners none \
  2>>"$W/tuskd.log" &
TUSKD_PID=$!
PIDS+=($TUSKD_PID)
for _ in $(seq 1 200); do [[ -s "$W/port" && -s "$W/s3port" ]] && break; sleep 0.05; done
export TUSK_ADDRESS="127.0.0.1:$(cat "$W/port")"
GW_URL="http://127.0.0.1:$(cat "$W/s3port")"
tusk() { "$BIN/tusk" "$@"; }
tusk create repo gw >/dev/null
s3rver_aws() { command aws --endpoint-url "$S3RVER_URL" "$@"; }
gw_aws() { command aws --endpoint-url "$GW_URL" "$@"; }
median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
mbs() { python3 -c "print(f'{$1 * 1048576 / $2 / 1e6:.0f} MB/s')"; }
timed() {  # timed CMD...: seconds it took
  local t0 t1
  t0=$(now)
  "$@" >/dev/null
  t1=$(now)
  elapsed "$t0" "$t1"
}

# --- 1. one large object -----------------------------------------------------
if part big; then
# Every upload gets bytes of its own: tusk deduplicates, and a second upload
# of the same bytes would store nothing.
echo "== 1. a $MIB MiB object" >&2
random_file() {  # random_file PATH SEED
  # openssl stops on SIGPIPE when head has enough.
  { openssl enc -aes-128-ctr -pass "pass:$2" -nosalt -pbkdf2 </dev/zero 2>/dev/null || true; } |
    head -c $((MIB << 20)) >"$1"
  cat "$1" >/dev/null  # every tool reads it from the page cache
}
up_s3=(); up_gw=(); up_curl=(); up_tusk=(); down_s3=(); down_gw=(); down_curl=(); down_tusk=()
for r in $(seq 1 "$RUNS"); do
  random_file "$W/big.bin" "s3rver-$r"
  up_s3+=("$(timed s3rver_aws s3 cp --only-show-errors "$W/big.bin" "s3://bench/big-$r")")
  random_file "$W/big.bin" "gw-$r"
  up_gw+=("$(timed gw_aws s3 cp --only-show-errors "$W/big.bin" "s3://gw/master/big-$r")")
  random_file "$W/big.bin" "curl-$r"
  up_curl+=("$(timed curl -sf -T "$W/big.bin" "$GW_URL/gw/master/curl-$r")")
  random_file "$W/big.bin" "tusk-$r"
  up_tusk+=("$(timed tusk put file "gw@master:/tusk-big-$r" -f "$W/big.bin")")
  rm -f "$W/big.bin"
  down_s3+=("$(timed s3rver_aws s3 cp --only-show-errors "s3://bench/big-$r" "$W/down.bin")")
  rm -f "$W/down.bin"
  down_gw+=("$(timed gw_aws s3 cp --only-show-errors "s3://gw/master/big-$r" "$W/down.bin")")
  rm -f "$W/down.bin"
  down_curl+=("$(timed curl -sf -o "$W/down.bin" "$GW_URL/gw/master/curl-$r")")
  rm -f "$W/down.bin"
  down_tusk+=("$(timed tusk get file "gw@master:/tusk-big-$r" -o "$W/down.bin")")
  rm -f "$W/down.bin"
  rm -rf "$W/s3/bench/big-$r"
  echo "  run $r: up s3rver ${up_s3[-1]} s, gateway ${up_gw[-1]} s, curl ${up_curl[-1]} s," \
    "tusk put ${up_tusk[-1]} s; down s3rver ${down_s3[-1]} s, gateway ${down_gw[-1]} s," \
    "curl ${down_curl[-1]} s, tusk get ${down_tusk[-1]} s" >&2
done
# The bytes come back as they went.
random_file "$W/big.bin" "curl-1"
curl -sf "$GW_URL/gw/master/curl-1" | cmp -s - "$W/big.bin" ||
  { echo "the gateway's download differs" >&2; exit 1; }
rm -f "$W/big.bin"
m() { median "$@"; }
row "PUT $MIB MiB, aws s3 cp (multipart, 10 threads): gateway vs s3rver (median of $RUNS)" \
  "$(mbs "$MIB" "$(m "${up_gw[@]}")")" "$(mbs "$MIB" "$(m "${up_s3[@]}")")" \
  "$(ratio "$(m "${up_s3[@]}")" "$(m "${up_gw[@]}")")" ">= 1"
row "PUT $MIB MiB, one stream: gateway (curl -T) vs tusk put file" \
  "$(mbs "$MIB" "$(m "${up_curl[@]}")")" "$(mbs "$MIB" "$(m "${up_tusk[@]}")")" \
  "$(ratio "$(m "${up_tusk[@]}")" "$(m "${up_curl[@]}")")" ">= 0.8"
row "PUT $MIB MiB: gateway through aws s3 cp vs tusk put file" \
  "$(mbs "$MIB" "$(m "${up_gw[@]}")")" "$(mbs "$MIB" "$(m "${up_tusk[@]}")")" \
  "$(ratio "$(m "${up_tusk[@]}")" "$(m "${up_gw[@]}")")" "(aws's own speed)"
row "GET $MIB MiB to a file, aws s3 cp (ranged, 10 threads): gateway vs s3rver" \
  "$(mbs "$MIB" "$(m "${down_gw[@]}")")" "$(mbs "$MIB" "$(m "${down_s3[@]}")")" \
  "$(ratio "$(m "${down_s3[@]}")" "$(m "${down_gw[@]}")")" ">= 1"
row "GET $MIB MiB to a file, one stream: gateway (curl -o) vs tusk get file -o" \
  "$(mbs "$MIB" "$(m "${down_curl[@]}")")" "$(mbs "$MIB" "$(m "${down_tusk[@]}")")" \
  "$(ratio "$(m "${down_tusk[@]}")" "$(m "${down_curl[@]}")")" ">= 0.8"
row "GET $MIB MiB: gateway through aws s3 cp vs tusk get file -o" \
  "$(mbs "$MIB" "$(m "${down_gw[@]}")")" "$(mbs "$MIB" "$(m "${down_tusk[@]}")")" \
  "$(ratio "$(m "${down_tusk[@]}")" "$(m "${down_gw[@]}")")" "(aws's own speed)"
# Bodies stream: the server's memory stays far below the object's size.
row "tuskd peak RSS after moving $MIB MiB objects through the gateway" \
  "$(( $(rss_kib "$TUSKD_PID") / 1024 )) MiB" "-" "-" "bounded"
fi

# --- 2. many small objects -----------------------------------------------------
if part sync || part hey; then
echo "== 2. aws s3 sync of $FILES small objects" >&2
python3 - "$W/small" "$FILES" <<'EOF'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
for i in range(n):
    d = os.path.join(root, "d%02d" % (i % 50))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "f%05d.json" % i), "wb") as f:
        f.write(rnd.randbytes(rnd.randint(200, 4000)))
EOF
sync_up_s3=$(timed s3rver_aws s3 sync --only-show-errors "$W/small" "s3://bench/small/")
sync_up_gw=$(timed gw_aws s3 sync --only-show-errors "$W/small" "s3://gw/master/small/")
sync_down_s3=$(timed s3rver_aws s3 sync --only-show-errors "s3://bench/small/" "$W/down-s3")
sync_down_gw=$(timed gw_aws s3 sync --only-show-errors "s3://gw/master/small/" "$W/down-gw")
diff -r "$W/small" "$W/down-gw" >/dev/null || { echo "the gateway's sync differs" >&2; exit 1; }
commits=$(tusk list commit gw@master --json | wc -l)
echo "  up: s3rver $sync_up_s3 s, gateway $sync_up_gw s ($commits commits on gw@master);" \
  "down: s3rver $sync_down_s3 s, gateway $sync_down_gw s" >&2
ops() { python3 -c "print(f'{$1 / $2:.0f} objects/s')"; }
row "aws s3 sync up, $FILES objects: gateway vs s3rver" "$(ops "$FILES" "$sync_up_gw")" \
  "$(ops "$FILES" "$sync_up_s3")" "$(ratio "$sync_up_s3" "$sync_up_gw")" ">= 1"
row "aws s3 sync down, $FILES objects: gateway vs s3rver" "$(ops "$FILES" "$sync_down_gw")" \
  "$(ops "$FILES" "$sync_down_s3")" "$(ratio "$sync_down_s3" "$sync_down_gw")" ">= 1"
fi

# --- 3. requests per second ------------------------------------------------------
# Unsigned requests: the gateway runs without --auth and s3rver accepts
# anonymous reads of its bucket, so `hey` needs no signer.
if part hey; then
echo "== 3. hey, $REQUESTS requests over 64 connections" >&2
hey_row() {  # hey_row LABEL METHOD PATH
  local label=$1 method=$2 path=$3 out_gw out_s3
  out_gw=$(hey -n "$REQUESTS" -c 64 -m "$method" "$GW_URL/gw/master/$path")
  out_s3=$(hey -n "$REQUESTS" -c 64 -m "$method" "$S3RVER_URL/bench/$path")
  python3 - "$label" "$out_gw" "$out_s3" <<'EOF' >>"$W/hey.rows"
import re, sys
label, gw, s3 = sys.argv[1], sys.argv[2], sys.argv[3]
def parse(out):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    lat = {m.group(1): float(m.group(2)) * 1000 for m in
           re.finditer(r"(\d+)%+ in ([\d.]+) secs", out)}
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    return rps, lat, codes
g, s = parse(gw), parse(s3)
if set(g[2]) != {"200"} or set(s[2]) != {"200"}:
    sys.exit("not every response was 200: gateway %s, s3rver %s" % (g[2], s[2]))
print("%s\t%.0f req/s, p50 %.1f ms, p99 %.1f ms\t%.0f req/s, p50 %.1f ms, p99 %.1f ms\t%.2f" % (
    label, g[0], g[1]["50"], g[1]["99"], s[0], s[1]["50"], s[1]["99"], g[0] / s[0]))
EOF
}
: >"$W/hey.rows"
hey_row "HeadObject, 64 connections" HEAD "small/d00/f00000.json"
hey_row "GET of a small object (~1 KiB), 64 connections" GET "small/d01/f00001.json"
while IFS=$'\t' read -r label gw s3 r; do
  row "$label: gateway vs s3rver" "$gw" "$s3" "$r" ">= 1"
done <"$W/hey.rows"
fi

print_table
