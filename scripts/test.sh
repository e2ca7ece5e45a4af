#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Python's pyarrow and
# numpy, for the tests that read outputs the way users do), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import pyarrow, numpy" 2>/dev/null; then
  echo "installing pyarrow and numpy for the output tests ..."
  python3 -m pip install --quiet --disable-pip-version-check "pyarrow>=14" "numpy>=1.24"
fi

# A hung test fails the suite after 20 minutes instead of stalling CI.
timeout 20m cargo test --all-targets --features kernel-emulation "$@"
