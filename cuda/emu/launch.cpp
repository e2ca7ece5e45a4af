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

extern "C" void hyflow_emu_ewma_score(const double* features, int n_feat, const int* order,
                                      const unsigned* seg_offsets, const unsigned* seg_slot, int n_segments,
                                      const int* watch, const double* alpha, int n_watch, unsigned* state_n,
                                      double* state_m, double* state_v, double* z_out, unsigned* seen_out) {
  const unsigned threads = 64;
  const unsigned blocks = (unsigned)((n_segments + threads - 1) / threads);
  if (blocks == 0) return;
  hyflow_emu::launch(dim3{blocks, 1, 1}, dim3{threads, 1, 1}, [&] {
    hyflow_ewma_score(features, n_feat, order, seg_offsets, seg_slot, n_segments, watch, alpha, n_watch, state_n,
                      state_m, state_v, z_out, seen_out);
  });
}
