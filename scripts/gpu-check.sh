#!/usr/bin/env bash
# On a machine with an NVIDIA GPU (one command, well under 8 minutes): build, run the kernel
# equivalence tests on the device (CUDA engine vs the CPU reference), the kernel throughput
# measurement, and an end-to-end replay with device = cpu, cuda:0 and auto. Paste the output
# into docs/gpu.md with the date and the GPU model.
set -uo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"

# NVRTC from its wheel when the machine has none (the driver comes with the machine).
if ! ldconfig -p | grep -q libnvrtc.so.12; then
  nvrtc_dir=${HYFLOW_NVRTC_DIR:-$HOME/.cache/hyflow/nvrtc-12.8.93}
  [ -e "$nvrtc_dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ] || python3 -m pip install --quiet --no-deps --target "$nvrtc_dir" nvidia-cuda-nvrtc-cu12==12.8.93
  export LD_LIBRARY_PATH="$nvrtc_dir/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

set -e
mkdir -p target/gpu-check
cargo build --release --quiet
echo "== equivalence and kernel throughput on the device"
cargo test --release --quiet --test gpu -- --ignored --nocapture --test-threads=1
echo "== end-to-end replay of the manufacturing pipeline (spectral bands) on a larger input"
input=target/gpu-check/manufacturing_512x2h.parquet
[ -e "$input" ] || target/release/hyflow gen manufacturing --sensors 512 --duration 2h --seed 1 --out "$input" >/dev/null
for device in cpu cuda:0 auto; do
  sed "s/^device = .*/device = \"$device\"/" pipelines/manufacturing.toml > target/gpu-check/m-$device.toml
  echo "-- device = $device"
  target/release/hyflow replay -q -w 4 target/gpu-check/m-$device.toml --input "$input" --out target/gpu-check/out-$device | grep -E "replayed|rows in|compute engines|cpu |cuda|energy"
done
