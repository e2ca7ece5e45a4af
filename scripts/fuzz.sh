#!/usr/bin/env bash
# Fuzzes the parsers that read untrusted input (fuzz/fuzz_targets/: pipeline files, the rule
# language, Kafka message payloads, text timestamps, registry topic messages and files) for a
# bounded time each, with cargo-fuzz (libFuzzer).
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET (default 60)] [TARGET...]
#
# Each run starts from the committed corpus (tests/hostile/fuzz/TARGET: seeds, a sample of what
# earlier runs found, and every input that once crashed; tests/it/hostile.rs replays it in CI) and
# from fuzz/corpus/TARGET (this machine's own, not committed), where new inputs go. A crash
# leaves its input in fuzz/artifacts/TARGET/ and the script goes on with the next target, then
# exits 1: fix the bug, then copy the input into tests/hostile/fuzz/TARGET/.
#
# cargo-fuzz needs nightly flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP=1.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(pipeline_file rule kafka_message text_time registry)
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz || exit 1
export RUSTC_BOOTSTRAP=1
failed=()
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  echo "== $t: ${secs}s"
  if ! cargo fuzz run --sanitizer none "$t" "fuzz/corpus/$t" "tests/hostile/fuzz/$t" -- \
    -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=4096; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
echo "no crash in ${targets[*]}"
