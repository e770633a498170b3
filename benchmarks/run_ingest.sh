#!/usr/bin/env bash
# Ingest benchmarks: tusk-ingest and its baselines side by side, on the same
# mock Kafka cluster (tusk-dev-kafka) and disk, in one run. Prints a markdown
# table (the one in benchmarks/README.md comes from this script).
#
#   benchmarks/run_ingest.sh            # everything (~2 min)
#   RUNS=1 benchmarks/run_ingest.sh     # one run of each throughput measurement
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup ingest

RUNS=${RUNS:-3}
# The mock keeps ~5 MB per partition: 16 x 25,000 records of 100 B stay under it.
PARTITIONS=16
RECORDS=400000
LATENCY_RECORDS=1000
LATENCY_RATE=200

# Records the branch head of source $1 holds (sum of committed offsets); cheap,
# so that polling does not take CPU from what is measured.
ingested() {
  "$BIN/tusk" inspect source "$1" --json | { grep -o '"committed_offset":"[0-9]*"' || true; } |
    awk -F'"' '{s += $4} END {print s + 0}'
}
"$BIN/tusk-dev-kafka" --topic bench --topic lat --partitions "$PARTITIONS" \
  --bootstrap-file "$W/boot" >/dev/null 2>"$W/kafka.log" &
PIDS+=($!)
"$BIN/tuskd" --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/port" 2>"$W/tuskd.log" &
PIDS+=($!)
for _ in $(seq 1 200); do [[ -s "$W/port" && -s "$W/boot" ]] && break; sleep 0.05; done
BOOT=$(cat "$W/boot")
export TUSK_ADDRESS="127.0.0.1:$(cat "$W/port")"
tusk() { "$BIN/tusk" "$@"; }


echo "== produce $RECORDS records of 100 B over $PARTITIONS partitions" >&2
"$BIN/tusk-dev-kafka" produce --brokers "$BOOT" --topic bench --count "$RECORDS" --size 100 >&2

echo "== kcat -C -e (baseline), $RUNS runs" >&2
kcat_times=()
for r in $(seq 1 "$RUNS"); do
  t0=$(now)
  n=$(kcat -C -b "$BOOT" -t bench -o beginning -e -q | wc -l)
  t1=$(now)
  [[ "$n" == "$RECORDS" ]] || { echo "kcat read $n records, expected $RECORDS" >&2; exit 1; }
  kcat_times+=("$(python3 -c "print($t1 - $t0)")")
done

# One tusk-ingest run: a fresh source and repo reading the whole topic. The
# time runs from the member's assignment (after the group join, which the
# mock delays by 3 s) to the finish of the commit that holds the last record.
ingest_run() {
  local name=$1
  tusk create source "$name" --kafka "$BOOT" --topic bench --repo "$name" --max-latency 50ms >/dev/null
  "$BIN/tusk-ingest" --source "$name" 2>"$W/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 240); do
    got=$(ingested "$name")
    [[ "$got" == "$RECORDS" ]] && break
    sleep 0.25
  done
  [[ "$got" == "$RECORDS" ]] || { echo "ingest $name stalled at $got records" >&2; exit 1; }
  rss=$(rss_kib "$pid")
  kill "$pid"; wait "$pid" || true
  tusk list commit "$name@master" --json >"$W/$name.commits"
  python3 - "$W/$name.log" "$W/$name.commits" "$rss" <<'EOF'
import json, sys
from benchlib import ts
start = None
for line in open(sys.argv[1]):
    if " assigned " in line:
        start = ts(line.split()[0])
        break
commits = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
end = max(ts(c["finished"]) for c in commits)
print(end - start, len(commits), sys.argv[3])
EOF
}

echo "== tusk-ingest (max-latency 50ms), $RUNS runs" >&2
ingest_times=(); ingest_commits=(); ingest_rss=0
for r in $(seq 1 "$RUNS"); do
  read -r secs commits rss < <(ingest_run "tput$r")
  ingest_times+=("$secs"); ingest_commits+=("$commits")
  (( rss > ingest_rss )) && ingest_rss=$rss
  echo "  run $r: $secs s, $commits commits, peak RSS $((rss / 1024)) MiB" >&2
done

read -r kcat_med ingest_med kcat_all ingest_all < <(python3 - "${kcat_times[*]}" "${ingest_times[*]}" <<'EOF'
import statistics, sys
k = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
print(statistics.median(k), statistics.median(t), ",".join(f"{x:.2f}" for x in k),
      ",".join(f"{x:.2f}" for x in t))
EOF
)
kcat_rate=$(python3 -c "print(int($RECORDS / $kcat_med))")
ingest_rate=$(python3 -c "print(int($RECORDS / $ingest_med))")
tput_ratio=$(python3 -c "print(f'{$ingest_rate / $kcat_rate:.2f}')")
row "Kafka -> repo, $RECORDS x 100 B records, $PARTITIONS partitions, max-latency 50ms, vs kcat -C -e >/dev/null (median of $RUNS; s: tusk $ingest_all, kcat $kcat_all)" \
  "$ingest_rate records/s" "$kcat_rate records/s" "$tput_ratio" ">= 0.7"
row "tusk-ingest peak RSS while ingesting" "$((ingest_rss / 1024)) MiB" "-" "-" "< 256 MiB"

echo "== latency: $LATENCY_RECORDS records at $LATENCY_RATE/s, max-latency 50ms" >&2
tusk create source lat --kafka "$BOOT" --topic lat --repo lat --max-latency 50ms >/dev/null
"$BIN/tusk-ingest" --source lat 2>"$W/lat.log" &
LAT_PID=$!
PIDS+=("$LAT_PID")
# Warm up: one record through, so that the member is fetching (not joining).
"$BIN/tusk-dev-kafka" produce --brokers "$BOOT" --topic lat --count 1 --key-prefix warmup >&2
for _ in $(seq 1 300); do [[ "$(ingested lat)" == 1 ]] && break; sleep 0.1; done
"$BIN/tusk-dev-kafka" produce --brokers "$BOOT" --topic lat --count "$LATENCY_RECORDS" \
  --size 100 --rate "$LATENCY_RATE" >&2
for _ in $(seq 1 300); do
  got=$(ingested lat)
  [[ "$got" == "$((LATENCY_RECORDS + 1))" ]] && break
  sleep 0.1
done
kill "$LAT_PID"; wait "$LAT_PID" || true
tusk list commit lat@master --json >"$W/lat.commits"
tusk get file lat@master:/lat -o "$W/lat.out" >/dev/null
read -r p50 p99 pmax < <(python3 - "$W/lat.commits" "$W/lat.out" <<'EOF'
import json, os, sys
from benchlib import ts
# Which commit made each (partition, offset) visible, and when.
visible = {}
for line in open(sys.argv[1]):
    c = json.loads(line)
    for k, v in c["metadata"].items():
        if k.startswith("kafka/lat/") and k.endswith("/offsets"):
            p = int(k.split("/")[2])
            a, b = (int(x) for x in v.split("-"))
            for o in range(a, b + 1):
                visible[(p, o)] = ts(c["finished"])
lat = []
for p in os.listdir(sys.argv[2]):
    for f in os.listdir(os.path.join(sys.argv[2], p)):
        for line in open(os.path.join(sys.argv[2], p, f)):
            r = json.loads(line)
            if r["key"].startswith("warmup"):
                continue
            lat.append((visible[(r["partition"], r["offset"])] - r["timestamp"] / 1000.0) * 1000)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]
print(f"{pick(0.50):.0f} {pick(0.99):.0f} {lat[-1]:.0f}")
EOF
)
row "produce -> visible in a finished commit, $LATENCY_RECORDS records at $LATENCY_RATE/s, max-latency 50ms (producer linger 5 ms included)" \
  "p50 $p50 ms, p99 $p99 ms (max $pmax)" "-" "-" "p99 < 150 ms"

print_table
