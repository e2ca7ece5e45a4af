#!/usr/bin/env bash
# The GPU check, on a machine with an NVIDIA GPU (one command, well under 8 minutes): the kernel
# equivalence tests on the device (CUDA engine vs the CPU reference), the kernel throughput
# measurement, and an end-to-end replay with device = cpu, cuda:0 and auto. Paste the output
# into docs/gpu.md with the date and the GPU model.
#
# The device machine may have no Rust toolchain: build here first with
#   scripts/gpu-check.sh --prepare
# which leaves stripped binaries in target/gpu-bundle (about 15 MB; carry that path), then run
#   scripts/gpu-check.sh
# there. With cargo present and no bundle, it builds in place.
#
# Rehearsal, here, without a GPU: `scripts/gpu-check.sh --rehearse` runs the very same steps
# against the fake CUDA driver (cuda/emu/fake_driver.cpp: the kernel emulated on the CPU) with
# every size cut down (HYFLOW_GPU_SCALE), so a broken script or test shows up before a GPU's
# minutes are spent on it. Its figures mean nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=target/gpu-bundle
sensors=512 duration=2h bench_size=()
if [ "${1:-}" = "--rehearse" ]; then
  cargo build --quiet --features kernel-emulation
  fake=$(ls -td target/debug/build/hyflow-*/out/fake-cuda | head -1)
  export LD_LIBRARY_PATH="$PWD/$fake${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" HYFLOW_GPU_SCALE=1000
  sensors=8 duration=10m bench_size=(--sensors 20 --seconds 20)
  echo "REHEARSAL against the fake driver $fake: sizes cut down, figures meaningless"
fi

if [ "${1:-}" = "--prepare" ]; then
  set -e
  cargo build --release --quiet
  test_bin=$(cargo test --release --test gpu --no-run 2>&1 | grep -o 'target/release/deps/gpu-[a-z0-9]*' | head -1)
  mkdir -p "$bundle"
  strip -o "$bundle/hyflow" target/release/hyflow
  strip -o "$bundle/gpu-tests" "$test_bin"
  ls -la "$bundle"
  exit 0
fi

# On the device machine the tool returns only the tail of the output, and the files under $OUT:
# keep the whole log there too.
if [ -n "${OUT:-}" ] && [ -d "$OUT" ]; then
  exec > >(tee "$OUT/gpu-check.log") 2>&1
fi
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"

# NVRTC: the machine's own when it has one. cudarc (built for CUDA 12.8) looks for
# libnvrtc.so, libnvrtc.so.12, ...: a CUDA 13 image has libnvrtc.so.13, so link it as
# libnvrtc.so. Else the 12.8 wheel (needs the network, which a device machine may not have).
if ! ldconfig -p | grep -q 'libnvrtc.so.12 '; then
  nv=$(ldconfig -p | grep -o '/[^ ]*/libnvrtc\.so\.1[0-9]*$' | head -1)
  [ -n "$nv" ] || nv=$(find /usr/local /usr/lib /opt -name 'libnvrtc.so.1[0-9]*' 2>/dev/null | grep -v builtins | sort | tail -1)
  if [ -n "$nv" ]; then
    mkdir -p target/nvrtc-link
    ln -sf "$nv" target/nvrtc-link/libnvrtc.so
    export LD_LIBRARY_PATH="$PWD/target/nvrtc-link:$(dirname "$nv")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "NVRTC: $nv"
  else
    nvrtc_dir=${HYFLOW_NVRTC_DIR:-$HOME/.cache/hyflow/nvrtc-12.8.93}
    [ -e "$nvrtc_dir/nvidia/cuda_nvrtc/lib/libnvrtc.so.12" ] || python3 -m pip install --quiet --no-deps --target "$nvrtc_dir" nvidia-cuda-nvrtc-cu12==12.8.93
    export LD_LIBRARY_PATH="$nvrtc_dir/nvidia/cuda_nvrtc/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
fi

set -e
if [ -x "$bundle/hyflow" ]; then
  hyflow=$bundle/hyflow
  gpu_tests=$bundle/gpu-tests
else
  cargo build --release --quiet
  hyflow=target/release/hyflow
  gpu_tests=$(cargo test --release --test gpu --no-run 2>&1 | grep -o 'target/release/deps/gpu-[a-z0-9]*' | head -1)
fi
mkdir -p target/gpu-check
echo "== equivalence and kernel throughput on the device"
"$gpu_tests" --ignored --nocapture --test-threads=1
echo "== end-to-end replay of the manufacturing pipeline (spectral bands) on a larger input"
input=target/gpu-check/manufacturing_${sensors}x$duration.parquet
[ -e "$input" ] || "$hyflow" gen manufacturing --sensors "$sensors" --duration "$duration" --seed 1 --out-file "$input" >/dev/null
for device in cpu cuda:0 auto; do
  echo "-- device = $device"
  "$hyflow" replay -w 4 pipelines/manufacturing.toml --device "$device" --input "$input" --out "target/gpu-check/out-$device" | grep -E "replayed|rows in|compute engines|^    (cpu|cuda)|energy"
done
echo "== the benchmark workload (pipelines/bench.toml), 4 workers"
for device in cpu cuda:0 auto; do
  echo "-- device = $device"
  "$hyflow" bench -w 4 --runs 3 --device "$device" "${bench_size[@]}" | grep -E "end to end|^    (cpu|cuda)|energy"
done
