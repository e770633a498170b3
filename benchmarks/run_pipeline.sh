#!/usr/bin/env bash
# Pipeline benchmarks (issue 4): tusk pipelines and their baselines side by
# side, in one run, on the same disk. Prints a markdown table (the one in
# benchmarks/README.md comes from this script).
#
#   benchmarks/run_pipeline.sh                               # full sizes (~15 min)
#   DATUMS=2000 FILES=10000 RECORDS=200 benchmarks/run_pipeline.sh   # a quick run
#
# 1. Per-datum overhead: DATUMS one-file datums, `cp` as the command,
#    parallelism 2. The baseline runs the same DATUMS `cp` processes, two at a
#    time (xargs -P2), on files already on disk; what tusk spends beyond it is
#    dispatch + materialize + upload (+ merge). Measured without a sandbox and
#    with bubblewrap, each against a baseline that starts the same processes
#    the same way (plain exec / the runner's bwrap command line).
# 2. Incremental: FILES files with glob /*, then one new file: the second job
#    must process exactly 1 datum.
# 3. Streaming: Kafka record -> tusk-ingest micro-commit (max-latency 50 ms) ->
#    one-stage pipeline -> output commit finished, RECORDS records.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup pipeline

DATUMS=${DATUMS:-10000}
FILES=${FILES:-100000}
RECORDS=${RECORDS:-1000}
RATE=${RATE:-50}

tusk() { "$BIN/tusk" "$@"; }

TUSKD_PID=
# start_tuskd NAME SANDBOX: a fresh tuskd on its own data directory.
start_tuskd() {
  stop_tuskd
  rm -f "$W/$1.port"
  "$BIN/tuskd" --data-dir "$W/$1" --listen 127.0.0.1:0 --port-file "$W/$1.port" \
    --sandbox "$2" >/dev/null 2>"$W/$1.log" &
  TUSKD_PID=$!
  PIDS+=("$TUSKD_PID")
  for _ in $(seq 1 200); do [[ -s "$W/$1.port" ]] && break; sleep 0.05; done
  export TUSK_ADDRESS="127.0.0.1:$(cat "$W/$1.port")"
}
stop_tuskd() {
  if [[ -n "$TUSKD_PID" ]]; then kill "$TUSKD_PID" 2>/dev/null || true; wait "$TUSKD_PID" 2>/dev/null || true; fi
  TUSKD_PID=
}

# The newest job of pipeline $1 once it is done: prints its JSON line.
wait_newest_job() {
  local id=""
  for _ in $(seq 1 600); do
    id=$(tusk list job -p "$1" -n 1 --json | python3 -c 'import json,sys
l=[json.loads(x) for x in sys.stdin if x.strip()]
print(l[0]["id"] if l else "")')
    [[ -n "$id" ]] && break
    sleep 0.1
  done
  [[ -n "$id" ]] || { echo "no job for pipeline $1" >&2; exit 1; }
  tusk wait job "$1@$id" --json >/dev/null || { echo "job $1@$id failed" >&2; exit 1; }
  tusk inspect job "$1@$id" --json
}
# Fields of a job's JSON line: seconds from created to finished, datum counts
# (total, processed, skipped, failed), and the mean download, command and
# upload time of its processed datums in ms.
job_fields() {
  python3 -c '
import json, sys
from datetime import datetime
def ts(s):
    s = s.rstrip("Z"); head, _, frac = s.partition(".")
    return datetime.fromisoformat(head + ("." + frac[:6] if frac else "")).timestamp()
j = json.loads(sys.stdin.read())
g = lambda k: int(j.get(k, 0))
secs = ts(j["finished"]) - ts(j["created"])
st = j.get("stats", {})
n = max(1, g("datums_processed"))
ms = lambda k: "%.2f" % (float(st.get(k, "0s").rstrip("s")) * 1000 / n)
print("%.4f" % secs, g("datums_total"), g("datums_processed"), g("datums_skipped"), g("datums_failed"),
      ms("download_time"), ms("process_time"), ms("upload_time"))'
}

# ---------------------------------------------------------------------------
echo "== 1. $DATUMS one-file datums, cp, parallelism 2" >&2
mkdir -p "$W/src"
python3 - "$W/src" "$DATUMS" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:06d}"), "wb") as f:
        f.write(i.to_bytes(8, "little") + os.urandom(1016))
EOF

# Baseline without a sandbox: the same cp processes, two at a time.
rm -rf "$W/out"; mkdir -p "$W/out"
t0=$(now)
(cd "$W/src" && ls | xargs -P2 -I{} cp {} "$W/out/")
t1=$(now)
base_plain=$(elapsed "$t0" "$t1")
[[ $(ls "$W/out" | wc -l) == "$DATUMS" ]] || { echo "baseline copied the wrong count" >&2; exit 1; }

# Baseline with bubblewrap: the runner's command line (the host root bound
# entry by entry, private /dev /proc /tmp, the input read-only, the output
# writable, its own pid namespace), one per datum, two at a time.
BWRAP_ROOT=()
for p in /*; do
  n=${p#/}
  case "$n" in proc|dev|tmp|pfs) continue ;; esac
  if [[ -L "$p" ]]; then BWRAP_ROOT+=(--symlink "$(readlink "$p")" "$p")
  elif [[ -d "$p" ]]; then BWRAP_ROOT+=(--ro-bind "$p" "$p"); fi
done
base_bwrap=-
if bwrap "${BWRAP_ROOT[@]}" --dev /dev --proc /proc --tmpfs /pfs true 2>/dev/null; then
  rm -rf "$W/out"; mkdir -p "$W/out"
  export W; export BWRAP_ARGS="${BWRAP_ROOT[*]}"
  t0=$(now)
  (cd "$W/src" && ls | xargs -P2 -I{} sh -c 'exec bwrap $BWRAP_ARGS --dev /dev --proc /proc --tmpfs /tmp \
      --ro-bind "$W/src/$1" "/pfs/src/$1" --bind "$W/out" /pfs/out --chdir /pfs \
      --unshare-pid --die-with-parent -- cp -r /pfs/src/. /pfs/out/' _ {})
  t1=$(now)
  base_bwrap=$(elapsed "$t0" "$t1")
  [[ $(ls "$W/out" | wc -l) == "$DATUMS" ]] || { echo "bwrap baseline copied the wrong count" >&2; exit 1; }
fi

CP_SPEC='{"pipeline": {"name": "copy"},
  "transform": {"cmd": ["cp", "-r", "/pfs/src/.", "/pfs/out/"]},
  "input": {"pfs": {"repo": "src", "glob": "/*"}},
  "parallelism_spec": {"constant": 2}}'

# One tusk run: put the files, create the pipeline, time the job.
tusk_cp_run() {
  start_tuskd "$1" "$2"
  tusk create repo src >/dev/null
  tusk put file src@master:/ -r -f "$W/src" >/dev/null
  echo "$CP_SPEC" >"$W/copy.json"
  tusk create pipeline -f "$W/copy.json" >/dev/null
  wait_newest_job copy | job_fields >"$W/$1.job"
  read -r secs total processed _ <"$W/$1.job"
  [[ "$processed" == "$DATUMS" ]] || { echo "$1: processed $processed of $DATUMS" >&2; exit 1; }
  n=$(tusk list file copy@master:/ --json | wc -l)
  [[ "$n" == "$DATUMS" ]] || { echo "$1: output has $n files" >&2; exit 1; }
  stop_tuskd
}
per_datum() { python3 -c "print(f'{($1 - $2) * 2 / $DATUMS * 1000:.2f} ms')"; }

# cp_rows NAME SANDBOX LABEL BASELINE_SECONDS BASELINE_LABEL: runs tusk and adds the rows.
cp_rows() {
  tusk_cp_run "$1" "$2"
  local secs dl proc up
  read -r secs _ _ _ _ dl proc up <"$W/$1.job"
  echo "  $3: tusk $secs s, baseline $4 s" >&2
  row "$DATUMS one-file datums, cp, parallelism 2, $3: job time vs $5 (s)" \
    "$secs s" "$4 s" "$(ratio "$4" "$secs")" "-"
  row "per-datum overhead, $3: (tusk - baseline) x 2 / $DATUMS; runner-measured per datum: download $dl ms, command $proc ms, upload (tuskd side) $up ms" \
    "$(per_datum "$secs" "$4")" "-" "-" "< 5 ms"
}
cp_rows cp-none none "no sandbox" "$base_plain" "xargs -P2 cp"
if [[ "$base_bwrap" != - ]]; then
  cp_rows cp-bwrap bwrap "in bubblewrap" "$base_bwrap" "xargs -P2 bwrap ... cp"
fi

print_table
