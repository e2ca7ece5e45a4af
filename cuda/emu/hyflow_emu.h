// Host emulation of the CUDA subset hyflow's kernels use, so the very same .cu sources compile
// as C++ and run on the CPU (tests in CI, where there is no GPU).
//
// - Blocks run one after another; a block's threads are host threads (started once per launch).
// - __syncthreads() is a barrier of the block's threads.
// - __shared__ becomes `static`: one instance, shared by the block's threads (correct because
//   blocks never run at the same time).
// - Warp shuffles go through a per-warp exchange buffer between two per-warp barrier waits.
// blockDim.x must be a multiple of 32.
#pragma once
#ifndef __CUDACC__

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

namespace hyflow_emu {
inline thread_local dim3 thread_idx;
inline dim3 block_idx;
inline dim3 block_dim;
inline dim3 grid_dim;
inline std::barrier<>* block_barrier = nullptr;
inline std::vector<std::unique_ptr<std::barrier<>>> warp_barriers;
inline std::vector<uint64_t> warp_exchange;  // one slot per thread of the block

// Runs `kernel` over the grid: blocks in order, each block's threads concurrently.
inline std::mutex launch_lock;  // the emulation state above is global: one launch at a time

template <class F>
void launch(dim3 grid, dim3 block, F kernel) {
  std::lock_guard<std::mutex> guard(launch_lock);
  grid_dim = grid;
  block_dim = block;
  const unsigned threads = block.x;
  if (grid.x == 0 || threads == 0) return;
  std::barrier<> bar(threads);
  block_barrier = &bar;
  warp_barriers.clear();
  for (unsigned w = 0; w < (threads + 31) / 32; ++w) warp_barriers.push_back(std::make_unique<std::barrier<>>(32));
  warp_exchange.assign(threads, 0);
  // The block's threads are started once per launch and walk the blocks together: a block
  // begins when every thread has finished the one before (the barrier's completion step moves
  // blockIdx on), so blocks still run one after another.
  unsigned next = 0;
  auto step = [&next]() noexcept { block_idx = dim3{next++, 0, 0}; };
  std::barrier<decltype(step)> between(threads, step);
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([t, &kernel, &between, grid] {
      thread_idx = dim3{t, 0, 0};
      for (unsigned b = 0; b < grid.x; ++b) {
        between.arrive_and_wait();
        kernel();
      }
    });
  }
  for (auto& th : pool) th.join();
  block_barrier = nullptr;
}

// Every lane of the warp offers `value` and gets the value of lane `from(lane)` (its own when
// that is past the warp), as the __shfl_*_sync intrinsics do.
template <class T, class F>
T shfl(T value, F from) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle of at most 8 bytes");
  const unsigned t = thread_idx.x, lane = t % 32, warp = t / 32;
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  warp_exchange[t] = bits;
  warp_barriers[warp]->arrive_and_wait();
  T out = value;
  const unsigned src = from(lane);
  if (src < 32) std::memcpy(&out, &warp_exchange[warp * 32 + src], sizeof(T));
  warp_barriers[warp]->arrive_and_wait();
  return out;
}

template <class T>
T shfl_down(T value, unsigned delta) {
  return shfl(value, [delta](unsigned lane) { return lane + delta; });
}

template <class T>
T shfl_xor(T value, unsigned mask) {
  return shfl(value, [mask](unsigned lane) { return lane ^ mask; });
}
}  // namespace hyflow_emu

#define threadIdx (hyflow_emu::thread_idx)
#define blockIdx (hyflow_emu::block_idx)
#define blockDim (hyflow_emu::block_dim)
#define gridDim (hyflow_emu::grid_dim)
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define __syncthreads() (hyflow_emu::block_barrier->arrive_and_wait())
#define __shfl_down_sync(mask, value, delta) (hyflow_emu::shfl_down((value), (delta)))
#define __shfl_xor_sync(mask, value, lane_mask) (hyflow_emu::shfl_xor((value), (lane_mask)))

#endif  // __CUDACC__
