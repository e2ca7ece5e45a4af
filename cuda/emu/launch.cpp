// Host entry point for the emulated kernels (built by build.rs with the `kernel-emulation`
// feature, for tests): compiles cuda/features.cu unchanged on top of the emulation header.
#include "hyflow_emu.h"

#include "../features.cu"

extern "C" void hyflow_emu_features(const double* values, const long long* times, const unsigned* offsets,
                                    const long long* starts, int n_windows, double window_secs, const int* kinds,
                                    const double* band_lo, const double* band_hi, int n_feat, double* out,
                                    unsigned threads) {
  hyflow_emu::launch(dim3{(unsigned)n_windows, 1, 1}, dim3{threads, 1, 1}, [&] {
    hyflow_features(values, times, offsets, starts, n_windows, window_secs, kinds, band_lo, band_hi, n_feat, out);
  });
}
