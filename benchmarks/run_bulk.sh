#!/usr/bin/env bash
# Bulk-dump benchmarks: `tusk put file --untar` against `tar -x` of the same
# archive to the same disk, side by side in one run. Prints a markdown table
# (the one in benchmarks/README.md comes from this script).
#
#   benchmarks/run_bulk.sh                       # 1 GiB tar of 100,000 files, 3 runs
#   FILES=10000 MIB=100 RUNS=1 benchmarks/run_bulk.sh   # a quick run
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bench_setup bulk

RUNS=${RUNS:-3}
FILES=${FILES:-100000}
MIB=${MIB:-1024}

echo "== a tar of $FILES files, $MIB MiB in all (random content, sizes spread around the mean)" >&2
python3 - "$W/dump.tar" "$FILES" "$MIB" <<'EOF'
import io, os, random, sys, tarfile
path, files, mib = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
mean = mib * 1024 * 1024 // files
# One random pool; each file is a distinct slice of it with its own first
# bytes, so no two files (and no chunks) are equal.
pool = os.urandom(4 * mean + 4096)
with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
    for i in range(files):
        size = rng.randint(mean // 2, mean * 3 // 2)
        start = rng.randint(0, len(pool) - size)
        data = i.to_bytes(8, "little") + pool[start:start + size - 8]
        info = tarfile.TarInfo(f"d{i % 100:02d}/s{(i // 100) % 10}/f{i:06d}.bin")
        info.size = len(data)
        info.mtime = 1700000000
        tar.addfile(info, io.BytesIO(data))
EOF
TAR_BYTES=$(stat -c %s "$W/dump.tar")
cat "$W/dump.tar" >/dev/null  # both sides read the archive from the page cache

"$BIN/tuskd" --data-dir "$W/data" --listen 127.0.0.1:0 --port-file "$W/port" 2>"$W/tuskd.log" &
PIDS+=($!)
for _ in $(seq 1 200); do [[ -s "$W/port" ]] && break; sleep 0.05; done
export TUSK_ADDRESS="127.0.0.1:$(cat "$W/port")"
tusk() { "$BIN/tusk" "$@"; }

# tar -x writes through the page cache and returns; tusk's commit is durable
# when put returns (packs fsynced, synced index write). The baseline is timed
# both ways: tar alone, and tar followed by a sync of its file system.
tar_times=(); tar_sync_times=(); tusk_times=()
for r in $(seq 1 "$RUNS"); do
  rm -rf "$W/x$r"; mkdir -p "$W/x$r"
  t0=$(now); tar -xf "$W/dump.tar" -C "$W/x$r"; t1=$(now); sync -f "$W/x$r"; t2=$(now)
  tar_times+=("$(elapsed "$t0" "$t1")"); tar_sync_times+=("$(elapsed "$t0" "$t2")")
  rm -rf "$W/x$r"

  tusk create repo "bulk$r" >/dev/null
  t0=$(now); tusk put file "bulk$r@master" --untar -f "$W/dump.tar" >"$W/put$r.out"; t1=$(now)
  tusk_times+=("$(elapsed "$t0" "$t1")")
  n=$(tusk inspect commit "bulk$r@master" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["file_count"])')
  [[ "$n" == "$FILES" ]] || { echo "the commit holds $n files, expected $FILES" >&2; exit 1; }
  echo "  run $r: tar -x ${tar_times[-1]} s (+sync ${tar_sync_times[-1]} s), tusk ${tusk_times[-1]} s" >&2
  tusk delete repo "bulk$r" >/dev/null
done

read -r tar_med sync_med tusk_med all < <(python3 - "${tar_times[*]}" "${tar_sync_times[*]}" "${tusk_times[*]}" <<'EOF'
import statistics, sys
a, b, c = ([float(x) for x in s.split()] for s in sys.argv[1:4])
fmt = lambda v: ",".join(f"{x:.2f}" for x in v)
print(statistics.median(a), statistics.median(b), statistics.median(c),
      f"tusk {fmt(c)}; tar {fmt(a)}; tar+sync {fmt(b)}")
EOF
)
mbs() { python3 -c "print(f'{$TAR_BYTES / $1 / 1e6:.0f} MB/s')"; }
fps() { python3 -c "print(f'{$FILES / $1:.0f} files/s')"; }
row "put file --untar of $MIB MiB, $FILES files vs tar -x to the same disk (median of $RUNS; s: $all)" \
  "$(mbs "$tusk_med"), $(fps "$tusk_med")" "$(mbs "$tar_med"), $(fps "$tar_med")" \
  "$(ratio "$tar_med" "$tusk_med")" ">= 0.5"
row "the same vs tar -x followed by sync -f (both durable at the end)" \
  "$(mbs "$tusk_med")" "$(mbs "$sync_med")" "$(ratio "$sync_med" "$tusk_med")" "-"

print_table
