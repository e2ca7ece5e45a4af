#!/usr/bin/env bash
# Whole-process wall time and peak RSS of `hyflow replay` on the benchmark workload, as
# WORKLOAD.md measures it. Usage: scripts/bench_wall.sh INPUT.parquet WORKERS [RUNS]
# Prints each run and the median (readings/s = input rows / wall seconds).
set -euo pipefail
input=$1 workers=$2 runs=${3:-5}
bin=${HYFLOW:-target/release/hyflow}
rows=$(python3 -c "import pyarrow.parquet as pq, sys; print(pq.ParquetFile(sys.argv[1]).metadata.num_rows)" "$input")
out=$(mktemp -d)
results=()
for _ in $(seq "$runs"); do
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$out/rss" "$bin" replay -q -w "$workers" pipelines/bench.toml --input "$input" --out "$out/o" >/dev/null 2>&1
  end=$(date +%s%N)
  secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  rss=$(awk '{ printf "%d", $1 / 1024 }' "$out/rss")
  echo "run: ${secs} s, $(awk -v r="$rows" -v s="$secs" 'BEGIN { printf "%.2f", r / s / 1e6 }') M readings/s, peak RSS ${rss} MiB"
  results+=("$secs $rss")
done
printf '%s\n' "${results[@]}" | sort -n | awk -v r="$rows" -v w="$workers" '{ s[NR] = $1; m[NR] = $2 } END { k = int((NR + 1) / 2); printf "median: %d rows, -w %s: %.3f s = %.2f M readings/s, peak RSS %d MiB\n", r, w, s[k], r / s[k] / 1e6, m[k] }'
rm -rf "$out"
