// Host entry point for the emulated kernels (built by build.rs with the `kernel-emulation`
// feature, for tests): compiles cuda/features.cu unchanged on top of the emulation header.
#include "hyflow_emu.h"

#include "../features.cu"

// `warp` 0: hyflow_features, a block of `threads` per window; else hyflow_features_warp,
// threads / 32 windows per block.
extern "C" void hyflow_emu_features(const double* values, const long long* times, const unsigned* offsets,
                                    const long long* starts, int n_windows, double window_secs, const int* kinds,
                                    const double* band_lo, const double* band_hi, int n_feat, double* out,
                                    unsigned threads, int warp) {
  if (warp) {
    const unsigned per_block = threads / 32;
    const unsigned blocks = ((unsigned)n_windows + per_block - 1) / per_block;
    hyflow_emu::launch(dim3{blocks, 1, 1}, dim3{threads, 1, 1}, [&] {
      hyflow_features_warp(values, times, offsets, starts, n_windows, window_secs, kinds, band_lo, band_hi, n_feat,
                           out);
    });
    return;
  }
  hyflow_emu::launch(dim3{(unsigned)n_windows, 1, 1}, dim3{threads, 1, 1}, [&] {
    hyflow_features(values, times, offsets, starts, n_windows, window_secs, kinds, band_lo, band_hi, n_feat, out);
  });
}

#include "../score.cu"

// hyflow_detect over `n_segments` segments, 64 threads per block.
extern "C" void hyflow_emu_detect(const double* x, const int* bucket, int n_watch, const int* kinds,
                                  const double* params, const int* cell_at, int block, const int* order,
                                  const unsigned* seg_offsets, const unsigned* seg_slot, const int* seg_patch,
                                  const HfCell* patch, int n_segments, HfCell* state, double* raw, HfCell* after,
                                  const int* learn, const double* gate, const unsigned* seen0, unsigned* gated,
                                  int* fate) {
  const unsigned threads = 64;
  const unsigned blocks = (unsigned)((n_segments + threads - 1) / threads);
  if (blocks == 0) return;
  hyflow_emu::launch(dim3{blocks, 1, 1}, dim3{threads, 1, 1}, [&] {
    hyflow_detect(x, bucket, n_watch, kinds, params, cell_at, block, order, seg_offsets, seg_slot, seg_patch, patch,
                  n_segments, state, raw, after, learn, gate, seen0, gated, fate);
  });
}
