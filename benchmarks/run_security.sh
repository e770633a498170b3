#!/usr/bin/env bash
# The cost of security: the same tuskd off (plaintext, no tokens), with
# tokens only (--auth; clients with TUSK_TOKEN), and with tokens and TLS
# (--auth --tls-cert/--tls-key; clients also with TUSK_TLS_CA), side by side
# on the same disk, interleaved run by run: micro-commits per second in both forms (one PutFile stream;
# StartCommit + PutFile + FinishCommit), and put and get of a big file with
# tusk.
#
#   benchmarks/run_security.sh                       # 3 runs
#   RUNS=5 MICRO=2000 BIG_MB=512 benchmarks/run_security.sh
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup security
RUNS="${RUNS:-3}"; MICRO="${MICRO:-1000}"; BIG_MB="${BIG_MB:-256}"

# A CA and a certificate for 127.0.0.1 (P-256, as a deployment would use).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$W/ca.key" \
  -out "$W/ca.pem" -days 2 -subj "/CN=tusk bench ca" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$W/server.key" \
  -out "$W/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$W/san.ext"
openssl x509 -req -in "$W/server.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial \
  -out "$W/server.pem" -days 2 -extfile "$W/san.ext" 2>/dev/null

TUSKD_PID=""
start_tuskd() {  # $1: off, auth or on (auth and TLS)
  rm -rf "$W/data" "$W/port" "$W/root.token"
  local extra=()
  if [[ "$1" != off ]]; then extra=(--auth --root-token-file "$W/root.token"); fi
  if [[ "$1" == on ]]; then extra+=(--tls-cert "$W/server.pem" --tls-key "$W/server.key"); fi
  "$BIN/tuskd" --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/port" --no-local-runners \
    "${extra[@]}" 2>>"$W/tuskd.log" &
  TUSKD_PID=$!
  for _ in $(seq 1 200); do [[ -s "$W/port" ]] && break; sleep 0.05; done
  ADDR="127.0.0.1:$(cat "$W/port")"
  unset TUSK_TOKEN TUSK_TLS_CA
  if [[ "$1" != off ]]; then export TUSK_TOKEN="$(cat "$W/root.token")"; fi
  if [[ "$1" == on ]]; then export TUSK_TLS_CA="$W/ca.pem"; fi
}
stop_tuskd() { if [[ -n "$TUSKD_PID" ]]; then kill "$TUSKD_PID" 2>/dev/null || true; wait "$TUSKD_PID" 2>/dev/null || true; TUSKD_PID=""; fi; }
trap stop_tuskd EXIT

head -c $((BIG_MB << 20)) /dev/urandom >"$W/big.bin"
declare -A one three put get
for run in $(seq 1 "$RUNS"); do
  for side in off auth on; do
    start_tuskd "$side"
    "$BIN/pfs_bench_client" microcommits --address "$ADDR" --repo m1 --count "$MICRO" --one-stream 1 >"$W/one.json"
    "$BIN/pfs_bench_client" microcommits --address "$ADDR" --repo m3 --count "$MICRO" >"$W/three.json"
    "$BIN/tusk" --address "$ADDR" create repo big >/dev/null
    sync
    t0=$(now); "$BIN/tusk" --address "$ADDR" put file big@master:/big.bin -f "$W/big.bin" >/dev/null; t1=$(now)
    g0=$(now); "$BIN/tusk" --address "$ADDR" get file big@master:/big.bin >/dev/null; g1=$(now)
    stop_tuskd
    one[$side]+="$(json_field "$W/one.json" commits_per_s) "
    three[$side]+="$(json_field "$W/three.json" commits_per_s) "
    put[$side]+="$(mbps "$BIG_MB" "$t0" "$t1") "
    get[$side]+="$(mbps "$BIG_MB" "$g0" "$g1") "
    echo "  run $run $side: one-stream $(json_field "$W/one.json" commits_per_s) three-RPC $(json_field "$W/three.json" commits_per_s) put $(mbps "$BIG_MB" "$t0" "$t1") MB/s" >&2
  done
done
cmp_row() {  # name, off values, auth values, on values, unit
  local b a t; b=$(median "$2"); a=$(median "$3"); t=$(median "$4")
  row "$1, tokens (runs: off ${2% }; tokens ${3% })" "$a $5" "$b $5" "$(ratio "$a" "$b")" "ratio near 1"
  row "$1, tokens + TLS (runs: off ${2% }; tokens + TLS ${4% })" "$t $5" "$b $5" "$(ratio "$t" "$b")" "ratio near 1"
}
cmp_row "$MICRO micro-commits, one PutFile stream (median)" "${one[off]}" "${one[auth]}" "${one[on]}" "commits/s"
cmp_row "$MICRO micro-commits, StartCommit + PutFile + FinishCommit (median)" "${three[off]}" "${three[auth]}" "${three[on]}" "commits/s"
cmp_row "put file $BIG_MB MiB (median)" "${put[off]}" "${put[auth]}" "${put[on]}" "MB/s"
cmp_row "get file $BIG_MB MiB to /dev/null (median)" "${get[off]}" "${get[auth]}" "${get[on]}" "MB/s"
print_table
