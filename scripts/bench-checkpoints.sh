#!/usr/bin/env bash
# The checkpoint benchmarks of docs/performance.md ("Checkpoints"), with the release binary:
#
#  1. Throughput cost: `hyflow replay pipelines/bench.toml` on the benchmark workload (1,000
#     sensors at 10 Hz for 1,000 s: 10 M readings) without `[recovery]`, with it at the default
#     interval (30 s), and at 1 s; wall time of the whole process, median of RUNS runs.
#  2. Size and time at 100 k sensors: benches/checkpoints.toml (every detector kind, an asset
#     detector, tail calibration) on 100,000 sensors for SECONDS seconds of event time, a
#     checkpoint every second of wall time; each checkpoint's file size, the time the sinks
#     were held for it (outputs made durable, state handed over) and the time its writer
#     thread took (encoded, written, flushed), from the `checkpoint written` log lines; and
#     the same run without checkpoints, for the throughput cost.
#  3. Restart: the same run resumed (`--resume`) from its newest checkpoint: wall time of the
#     whole resumed process (read and restore the checkpoint, pass over the rows before the
#     cut, finish the rest), against the run from the start.
#
# Usage: scripts/bench-checkpoints.sh [WORKERS] ; env RUNS (3), SECONDS_100K (30), WORK (a
# temporary directory, removed at the end unless given).
set -euo pipefail
cd "$(dirname "$0")/.."
workers=${1:-2}
runs=${RUNS:-3}
seconds=${SECONDS_100K:-30}
if [ -n "${WORK:-}" ]; then work=$WORK; mkdir -p "$work"; else work=$(mktemp -d); trap 'rm -rf "$work"' EXIT; fi
cargo build --release --quiet
bin=target/release/hyflow

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%s", v[int((NR + 1) / 2)] }'; }

echo "## 1. Throughput cost (pipelines/bench.toml, 10 M readings, -w $workers, median of $runs)"
[ -e "$work/bench.parquet" ] || "$bin" gen bench --sensors 1000 --duration 1000s --out-file "$work/bench.parquet" -q
for setting in none 30s 1s; do
  times=()
  written=0
  for _ in $(seq "$runs"); do
    rm -rf "$work/o"
    set_args=()
    [ "$setting" = none ] || set_args=(--set "recovery.checkpoint-interval=\"$setting\"")
    start=$(now)
    RUST_LOG=hyflow=info "$bin" replay pipelines/bench.toml -w "$workers" --input "$work/bench.parquet" \
      --out "$work/o" "${set_args[@]}" >/dev/null 2>"$work/log"
    end=$(now)
    times+=("$(secs "$start" "$end")")
    written=$(grep -c "checkpoint written" "$work/log" || true)
  done
  t=$(printf '%s\n' "${times[@]}" | median)
  echo "recovery: $setting  runs: ${times[*]} s  median: $t s = $(awk -v s="$t" 'BEGIN { printf "%.2f", 1e7 / s / 1e6 }') M readings/s  checkpoints in the last run: $written"
done

echo
echo "## 2. Checkpoints of 100,000 sensors (benches/checkpoints.toml, $seconds s at 10 Hz, -w $workers)"
[ -e "$work/100k.parquet" ] || "$bin" gen bench --sensors 100000 --duration "${seconds}s" --out-file "$work/100k.parquet" -q
rm -rf "$work/o100k"
start=$(now)
RUST_LOG=hyflow=info "$bin" replay benches/checkpoints.toml -w "$workers" --input "$work/100k.parquet" \
  --out "$work/o100k" --set 'recovery.checkpoint-interval="1s"' >"$work/summary100k" 2>"$work/log100k"
end=$(now)
full=$(secs "$start" "$end")
grep "rows in\|windows \|alert events" "$work/summary100k" || true
echo "run from the start: $full s"
rm -rf "$work/o100k-none"
start=$(now)
"$bin" replay benches/checkpoints.toml -w "$workers" --input "$work/100k.parquet" \
  --out "$work/o100k-none" --set 'recovery.enabled=false' -q >/dev/null
echo "the same run without checkpoints: $(secs "$start" "$(now)") s"
rm -rf "$work/o100k-none"
grep "checkpoint written" "$work/log100k" | sed 's/\x1b\[[0-9;]*m//g' |
  awk '{ for (i = 1; i <= NF; i++) { if ($i ~ /^bytes=/) { sub("bytes=", "", $i); b = $i } if ($i ~ /^held=/) { sub("held=", "", $i); h = $i } if ($i ~ /^seconds=/) { sub("seconds=", "", $i); s = $i } } printf "checkpoint: %.1f MiB, sinks held %.3f s, written in %.3f s by its own thread\n", b / 1048576, h, s }'

echo
echo "## 3. Restart from the newest checkpoint"
"$bin" checkpoint inspect "$work/o100k/checkpoints" 2>&1 | head -4 || true
start=$(now)
"$bin" replay benches/checkpoints.toml -w "$workers" --input "$work/100k.parquet" --out "$work/o100k" \
  --set 'recovery.checkpoint-interval="1s"' --resume -q
end=$(now)
echo "resumed run: $(secs "$start" "$end") s in all (the run from the start: $full s)"
