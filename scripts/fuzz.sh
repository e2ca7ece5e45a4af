#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (fuzz/fuzz_targets/: pipeline files, the rule
# language, Kafka message payloads, text timestamps) for a bounded time each, with cargo-fuzz
# (libFuzzer). Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
#
# Starts from the committed corpus (tests/hostile/fuzz/TARGET, which tests/hostile.rs replays
# in CI) and merges into it the inputs libFuzzer found that reach new coverage. A crash
# stops the script with its input saved under fuzz/artifacts/TARGET/: copy that file into
# tests/hostile/fuzz/TARGET/ as a regression case once it is fixed.
#
# cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pipeline_file rule kafka_message text_time)
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  corpus=tests/hostile/fuzz/$t
  mkdir -p "$corpus" "fuzz/corpus/$t"
  echo "== $t: ${secs}s"
  cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" "$corpus" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=4096
  # Add to the committed corpus only the inputs that reach new coverage.
  cargo fuzz run --sanitizer none "$t" "$corpus" "fuzz/corpus/$t" -- -merge=1 -max_len=65536 \
    2>&1 | grep -E "MERGE-OUTER: [0-9]+ new files" || true
done
