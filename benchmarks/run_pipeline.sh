#!/usr/bin/env bash
# Pipeline benchmarks (issue 4): tusk pipelines and their baselines side by
# side, in one run, on the same disk. Prints a markdown table (the one in
# benchmarks/README.md comes from this script).
#
#   benchmarks/run_pipeline.sh                               # full sizes (~15 min)
#   DATUMS=2000 FILES=10000 RECORDS=200 benchmarks/run_pipeline.sh   # a quick run
#   SKIP_CP=1 SKIP_STREAM=1 benchmarks/run_pipeline.sh       # part 2 alone
#
# 1. Per-datum overhead: DATUMS one-file datums, `cp` as the command,
#    parallelism 2. The baseline runs the same DATUMS `cp` processes, two at a
#    time (xargs -P2), on files already on disk; what tusk spends beyond it is
#    dispatch + materialize + upload (+ merge). Measured without a sandbox and
#    with bubblewrap, each against a baseline that starts the same processes
#    the same way (plain exec / the runner's bwrap command line).
# 2. FILES one-file datums in one first job (runners lease datum sets)
#    against xargs -P2 cp of the same files; then one new file (INC_RUNS
#    times): each later job must process exactly 1 datum.
# 3. Streaming: Kafka record -> tusk-ingest micro-commit (max-latency 50 ms) ->
#    one-stage pipeline -> output commit finished, RECORDS records.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup pipeline

DATUMS=${DATUMS:-10000}
FILES=${FILES:-100000}
INC_RUNS=${INC_RUNS:-5}
RECORDS=${RECORDS:-1000}
RATE=${RATE:-200}

tusk() { "$BIN/tusk" "$@"; }

# A pipeline that copies each file of repo src (the one-file datums).
CP_SPEC='{"pipeline": {"name": "copy"},
  "transform": {"cmd": ["cp", "-r", "/pfs/src/.", "/pfs/out/"]},
  "input": {"pfs": {"repo": "src", "glob": "/*"}},
  "parallelism_spec": {"constant": 2}}'

# make_files DIR N PREFIX BYTES: N distinct files of BYTES, DIR/PREFIX000000...
make_files() {
  mkdir -p "$1"
  python3 - "$@" <<'EOF'
import os, sys
d, n, prefix, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for i in range(n):
    with open(os.path.join(d, f"{prefix}{i:06d}"), "wb") as f:
        f.write(i.to_bytes(8, "little") + os.urandom(size - 8))
EOF
}

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
from benchlib import ts
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
# Seconds for `xargs -P2 cp` of the COUNT files of DIR into $W/out: the
# baseline of a job of one-file datums (the same cp processes, two at a time).
xargs_cp_seconds() {
  local dir=$1 count=$2 t0 t1
  rm -rf "$W/out"; mkdir -p "$W/out"
  t0=$(now)
  (cd "$dir" && ls | xargs -P2 -I{} cp {} "$W/out/")
  t1=$(now)
  [[ $(ls "$W/out" | wc -l) == "$count" ]] || { echo "baseline copied the wrong count" >&2; exit 1; }
  elapsed "$t0" "$t1"
}

if [[ -z "${SKIP_CP:-}" ]]; then
echo "== 1. $DATUMS one-file datums, cp, parallelism 2" >&2
make_files "$W/src" "$DATUMS" f 1024

# Baseline without a sandbox: the same cp processes, two at a time.
base_plain=$(xargs_cp_seconds "$W/src" "$DATUMS")

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
fi  # SKIP_CP

# ---------------------------------------------------------------------------
echo "== 2. $FILES files, glob /*, then one new file at a time ($INC_RUNS times)" >&2
make_files "$W/many" "$FILES" m 64
# The first job's baseline: the same cp processes, two at a time.
base_many=$(xargs_cp_seconds "$W/many" "$FILES")
rm -rf "$W/out"
start_tuskd incremental none
tusk create repo many >/dev/null
tusk put file many@master:/ -r -f "$W/many" >/dev/null
sed -e 's/"copy"/"inc"/' -e 's/src/many/g' <<<"$CP_SPEC" >"$W/inc.json"
tusk create pipeline -f "$W/inc.json" >/dev/null
wait_newest_job inc | job_fields >"$W/inc-first.job"
read -r first_secs _ first_processed _ <"$W/inc-first.job"
[[ "$first_processed" == "$FILES" ]] || { echo "first job processed $first_processed of $FILES" >&2; exit 1; }
echo "  first job: $first_secs s for $FILES datums" >&2
# commit_finished REPO: the head commit's finish time (s since the epoch).
commit_finished() {
  tusk inspect commit "$1@master" --json | python3 -c '
import json, sys
from benchlib import ts
print(ts(json.load(sys.stdin)["finished"]))'
}
: >"$W/inc.runs"
for r in $(seq 1 "$INC_RUNS"); do
  echo "new file $r" | tusk put file "many@master:/new-$r" -f - >/dev/null
  in_done=$(commit_finished many)
  wait_newest_job inc | job_fields >"$W/inc-$r.job"
  out_done=$(commit_finished inc)
  read -r secs _ processed skipped _ <"$W/inc-$r.job"
  [[ "$processed" == 1 && "$skipped" == "$((FILES + r - 1))" ]] ||
    { echo "incremental job $r: processed $processed, skipped $skipped" >&2; exit 1; }
  echo "$secs $(elapsed "$in_done" "$out_done")" >>"$W/inc.runs"
done
stop_tuskd
read -r inc_med inc_max e2e_med e2e_max < <(python3 - "$W/inc.runs" <<'EOF'
import statistics, sys
rows = [[float(x) for x in l.split()] for l in open(sys.argv[1]) if l.strip()]
job = [r[0] * 1000 for r in rows]; e2e = [r[1] * 1000 for r in rows]
print(f"{statistics.median(job):.1f} {max(job):.1f} {statistics.median(e2e):.1f} {max(e2e):.1f}")
EOF
)
row "$FILES files, glob /*: first job ($FILES datums, cp, no sandbox, datum sets as tusk picks them) vs xargs -P2 cp of the same files" \
  "$first_secs s" "$base_many s" "$(ratio "$first_secs" "$base_many")" "<= 1.3 (tusk / baseline)"
row "then one new file, $INC_RUNS times: each job processed exactly 1 datum and skipped the rest; job created -> finished, median (max)" \
  "$inc_med ms ($inc_max)" "-" "-" "< 200 ms"
row "the same jobs: input commit finished -> output commit finished, median (max)" \
  "$e2e_med ms ($e2e_max)" "-" "-" "-"
row "incremental job / first job (medians)" \
  "$(python3 -c "print(f'{$inc_med / 10 / $first_secs:.3f}%')")" "-" "-" "< 1%"

# ---------------------------------------------------------------------------
if [[ -z "${SKIP_STREAM:-}" ]]; then
echo "== 3. streaming: $RECORDS Kafka records at $RATE/s -> micro-commits -> pipeline" >&2
"$BIN/tusk-dev-kafka" --topic events --partitions 1 --bootstrap-file "$W/boot" >/dev/null 2>"$W/kafka.log" &
PIDS+=($!)
for _ in $(seq 1 200); do [[ -s "$W/boot" ]] && break; sleep 0.05; done
BOOT=$(cat "$W/boot")
start_tuskd streaming auto  # the default sandbox (bubblewrap where it works)
tusk create source events --kafka "$BOOT" --topic events --repo events --max-latency 50ms >/dev/null
cat >"$W/stream.json" <<'EOF'
{"pipeline": {"name": "events-copy"},
 "transform": {"cmd": ["cp", "-r", "/pfs/events/.", "/pfs/out/"]},
 "input": {"pfs": {"repo": "events", "glob": "/*/*/*"}},
 "parallelism_spec": {"constant": 2}}
EOF
tusk create pipeline -f "$W/stream.json" >/dev/null
"$BIN/tusk-ingest" --source events 2>"$W/ingest.log" &
INGEST_PID=$!
PIDS+=("$INGEST_PID")
# Warm up: one record all the way through, so that the consumer is fetching
# (not joining its group) and the runners are up.
"$BIN/tusk-dev-kafka" produce --brokers "$BOOT" --topic events --count 1 --key-prefix warmup >&2
out_files() { tusk list file "events-copy@master:/events/0" --json 2>/dev/null | wc -l; }
for _ in $(seq 1 600); do [[ $(out_files) -ge 1 ]] && break; sleep 0.1; done
[[ $(out_files) -ge 1 ]] || { echo "the warm-up record never reached the pipeline's output" >&2; exit 1; }
"$BIN/tusk-dev-kafka" produce --brokers "$BOOT" --topic events --count "$RECORDS" --size 100 --rate "$RATE" >&2
# Until every record is in a commit of events, and the output's head comes
# from events' head (bounded: 120 s).
ingested() {
  tusk inspect source events --json | { grep -o '"committed_offset":"[0-9]*"' || true; } |
    awk -F'"' '{s += $4} END {print s + 0}'
}
head_id() { tusk inspect commit "$1@master" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
caught_up() {
  tusk inspect commit events-copy@master --json 2>/dev/null | python3 -c '
import json, sys
c = json.load(sys.stdin)
print(int(c.get("finished") is not None and any(p["id"] == sys.argv[1] for p in c.get("provenance", []))))' "$1"
}
want=$((RECORDS + 1))
for _ in $(seq 1 1200); do [[ $(ingested) == "$want" ]] && break; sleep 0.1; done
[[ $(ingested) == "$want" ]] || { echo "ingest stalled at $(ingested) of $want records" >&2; exit 1; }
last=$(head_id events)
for _ in $(seq 1 1200); do [[ $(caught_up "$last") == 1 ]] && break; sleep 0.1; done
[[ $(caught_up "$last") == 1 ]] || { echo "the pipeline did not catch up with events@$last" >&2; exit 1; }
kill "$INGEST_PID"; wait "$INGEST_PID" || true
tusk list commit events@master --json >"$W/events.commits"
tusk list commit events-copy@master --json >"$W/copy.commits"
tusk list job -p events-copy --json >"$W/stream.jobs"
tusk get file events-copy@master:/events -o "$W/stream.out" >/dev/null
stop_tuskd
read -r s50 s99 smax ncommits njobs < <(python3 - "$W/events.commits" "$W/copy.commits" "$W/stream.out" "$W/stream.jobs" <<'EOF'
import json, os, sys
from benchlib import ts
lines = lambda p: [json.loads(l) for l in open(p) if l.strip()]
# Which ingest commit holds each offset; which output commit came from it.
holder = {}
for c in lines(sys.argv[1]):
    for k, v in c["metadata"].items():
        if k.startswith("kafka/events/") and k.endswith("/offsets"):
            a, b = (int(x) for x in v.split("-"))
            for o in range(a, b + 1):
                holder[o] = c["id"]
done = {}
for c in lines(sys.argv[2]):
    for p in c.get("provenance", []):
        if p["repo"] == "events":
            done[p["id"]] = ts(c["finished"])
lat = []
for root, _, files in os.walk(sys.argv[3]):
    for f in files:
        for line in open(os.path.join(root, f)):
            r = json.loads(line)
            if r["key"].startswith("warmup"):
                continue
            lat.append((done[holder[r["offset"]]] - r["timestamp"] / 1000.0) * 1000)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
jobs = lines(sys.argv[4])
assert all(j["state"] == "JOB_SUCCESS" for j in jobs), "a streaming job failed"
print(f"{pick(0.50):.0f} {pick(0.99):.0f} {lat[-1]:.0f} {len(set(holder.values()))} {len(jobs)}")
EOF
)
row "Kafka record -> ingest micro-commit (max-latency 50ms) -> one-stage pipeline (cp, bubblewrap) -> output commit finished; $RECORDS records at $RATE/s, $ncommits commits, $njobs jobs" \
  "p50 $s50 ms, p99 $s99 ms (max $smax)" "-" "-" "p99 < 500 ms"
fi  # SKIP_STREAM

print_table
