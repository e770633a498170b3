# Shared by the benchmark scripts (source it from benchmarks/run_*.sh):
#   bench_setup NAME   installs what benchmarks need, builds, and sets ROOT,
#                      BIN and W (a fresh work directory, $BENCH_DIR/NAME)
#   row ...            records a table row; print_table prints the table
#   PIDS+=($!)         a background process to kill when the script exits
bench_setup() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.."
  ROOT=$(pwd)
  scripts/install-deps.sh --bench
  scripts/build.sh >/dev/null
  BIN="$ROOT/${TUSK_BUILD_DIR:-build}/bin"
  export PYTHONPATH="$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH}"  # benchlib.py
  W="${BENCH_DIR:-$ROOT/build/bench}/$1"
  rm -rf "$W"
  mkdir -p "$W"
}

now() { date +%s.%N; }
elapsed() { python3 -c "print(f'{$2 - $1:.3f}')"; }
ratio() { python3 -c "print(f'{$1 / $2:.2f}')"; }
# MB/s of $1 MiB moved from time $2 to $3; a field of a JSON file; the median
# of a space-separated list.
mbps() { python3 -c "print(f'{$1 * 1.048576 / ($3 - $2):.0f}')"; }
json_field() { python3 -c "import json; print(json.load(open('$1'))['$2'])"; }
median() { python3 -c "import statistics,sys; print(f'{statistics.median(float(x) for x in sys.argv[1:]):.0f}')" $1; }
rss_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }

ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 |"); echo "  $1: tusk $2, baseline $3, ratio $4 ($5)" >&2; }
print_table() {
  echo
  echo "| benchmark | tusk | baseline | ratio | target |"
  echo "|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
}

PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
