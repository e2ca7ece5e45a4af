// Per-sensor EWMA z-score detectors with their state kept on the device (a slot per sensor),
// updated in place in the same order and with the same arithmetic as the CPU reference
// (src/detect/mod.rs, Ewma::score_and_update), so both give the same scores.
//
// Windows arrive grouped into segments, one per sensor slot present in the batch: the windows of
// segment s are order[seg_offsets[s] .. seg_offsets[s + 1]], in time order. One thread walks one
// segment; for each window and watched (detector, feature) pair j it writes the z-score and the
// number of windows the baseline had seen before (for the warm-up test on the host).
//
// Compiled by NVRTC for the GPU and, over cuda/emu/hyflow_emu.h, as C++ for tests. No includes.

extern "C" __global__ void hyflow_ewma_score(const double* features, int n_feat, const int* order,
                                             const unsigned* seg_offsets, const unsigned* seg_slot, int n_segments,
                                             const int* watch, const double* alpha, int n_watch, unsigned* state_n,
                                             double* state_m, double* state_v, double* z_out, unsigned* seen_out) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= n_segments) return;
  const unsigned long long base = (unsigned long long)seg_slot[s] * (unsigned long long)n_watch;
  for (unsigned k = seg_offsets[s]; k < seg_offsets[s + 1]; ++k) {
    const long long w = order[k];
    for (int j = 0; j < n_watch; ++j) {
      const double x = features[w * n_feat + watch[j]];
      const unsigned long long i = base + (unsigned long long)j;
      unsigned n = state_n[i];
      double m = state_m[i], v = state_v[i];
      double z = 0.0;
      seen_out[w * n_watch + j] = n;
      if (x - x == 0.0) {  // finite
        const double a = alpha[j];
        z = n == 0 ? 0.0 : fabs(x - m) / sqrt(v + 1e-9);
        if (n == 0) {
          m = x;
          v = 0.0;
        } else {
          const double d = x - m;
          m += a * d;
          v = (1.0 - a) * (v + a * d * d);
        }
        if (n != 0xffffffffu) n += 1;
        state_n[i] = n;
        state_m[i] = m;
        state_v[i] = v;
      }
      z_out[w * n_watch + j] = z;
    }
  }
}
