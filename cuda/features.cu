// Feature extraction for a batch of windows. Layout = hyflow's WindowBatch: values and times
// concatenated, window w's values at [offsets[w], offsets[w + 1]). Output: out[w * n_feat + j]
// for feature j, whose kind is kinds[j] (codes in src/compute/mod.rs, `kernel_codes`). Two
// passes over the values: sums/extremes, then central moments, the time regression and mean
// crossings; then one Goertzel pass per spectral bin, bins spread over the threads.
//
// Two kernels, one body (`hf_window`), for two ways to map windows to threads:
// - `hyflow_features`: one block per window, its threads striding over the values, block-wide
//   reductions (warp shuffles, then shared memory and __syncthreads). For long windows.
// - `hyflow_features_warp`: one warp per window, blockDim / 32 windows per block, warp-only
//   reductions (xor shuffles: every lane gets the result), no shared memory or block barrier.
//   For short windows, where a block per window would leave threads idle and spend its time
//   in barriers. The host picks one per batch (compute::KernelLayout).
//
// The same source is compiled by NVRTC for the GPU and, with cuda/emu/hyflow_emu.h, as C++ on
// the host for tests. Keep it free of includes.

#define HF_COUNT 0
#define HF_MEAN 1
#define HF_STD 2
#define HF_MIN 3
#define HF_MAX 4
#define HF_RMS 5
#define HF_SKEW 6
#define HF_KURT 7
#define HF_SLOPE 8
#define HF_P2P 9
#define HF_MCR 10
#define HF_BAND 11

struct HfSum {
  __device__ __forceinline__ double operator()(double a, double b) const { return a + b; }
};
struct HfMin {
  __device__ __forceinline__ double operator()(double a, double b) const { return fmin(a, b); }
};
struct HfMax {
  __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

template <class Op>
__device__ __forceinline__ double hf_warp_reduce(double v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
  return v;
}

// Reduces one value per thread over the block; every thread gets the result.
template <class Op>
__device__ double hf_block_reduce(double v, double identity, double* scratch, Op op) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned warps = (blockDim.x + 31u) >> 5;
  v = hf_warp_reduce(v, op);
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < warps ? scratch[lane] : identity;
    v = hf_warp_reduce(v, op);
    if (lane == 0) scratch[32] = v;
  }
  __syncthreads();
  const double r = scratch[32];
  __syncthreads();
  return r;
}

// The threads computing one window: a whole block ...
struct HfBlock {
  double* scratch;  // 33 doubles of shared memory
  __device__ unsigned rank() const { return threadIdx.x; }
  __device__ unsigned size() const { return blockDim.x; }
  template <class Op>
  __device__ double reduce(double v, double identity, Op op) const {
    return hf_block_reduce(v, identity, scratch, op);
  }
};

// ... or one warp.
struct HfWarp {
  __device__ unsigned rank() const { return threadIdx.x & 31u; }
  __device__ unsigned size() const { return 32u; }
  template <class Op>
  __device__ double reduce(double v, double, Op op) const {
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  }
};

// Every feature of window `w`, computed by the threads of `g`.
template <class G>
__device__ void hf_window(const G& g, int w, const double* values, const long long* times, const unsigned* offsets,
                          const long long* starts, double window_secs, const int* kinds, const double* band_lo,
                          const double* band_hi, int n_feat, double* out) {
  const unsigned a = offsets[w];
  const int n = (int)(offsets[w + 1] - a);
  const double* x = values + a;
  const long long* t = times + a;
  const long long start = starts[w];
  const double inf = 1.0 / 0.0;
  const double nan = 0.0 / 0.0;

  // Pass 1: sums, extremes, mean time.
  double s = 0.0, ss = 0.0, mn = inf, mx = -inf, st = 0.0;
  for (int i = g.rank(); i < n; i += g.size()) {
    const double v = x[i];
    s += v;
    ss += v * v;
    mn = fmin(mn, v);
    mx = fmax(mx, v);
    st += (double)(t[i] - start) / 1000.0;
  }
  s = g.reduce(s, 0.0, HfSum());
  ss = g.reduce(ss, 0.0, HfSum());
  mn = g.reduce(mn, inf, HfMin());
  mx = g.reduce(mx, -inf, HfMax());
  st = g.reduce(st, 0.0, HfSum());
  const double nn = (double)n;
  // A constant window's mean is its value exactly, so its central moments are exactly 0
  // (s / n can be off by an ulp, which made std 1e-16 and skewness 1 on a stuck sensor).
  const double mean = mn == mx ? mn : s / nn;
  const double tm = st / nn;

  // Pass 2: central moments, regression on time, mean crossings.
  double m2 = 0.0, m3 = 0.0, m4 = 0.0, sxy = 0.0, sxx = 0.0, cross = 0.0;
  for (int i = g.rank(); i < n; i += g.size()) {
    const double d = x[i] - mean;
    const double d2 = d * d;
    m2 += d2;
    m3 += d2 * d;
    m4 += d2 * d2;
    const double dt = (double)(t[i] - start) / 1000.0 - tm;
    sxy += dt * d;
    sxx += dt * dt;
    if (i > 0) {
      const double p = x[i - 1] - mean;
      if (d != 0.0 && p != 0.0 && ((d > 0.0) != (p > 0.0))) cross += 1.0;
    }
  }
  m2 = g.reduce(m2, 0.0, HfSum()) / nn;
  m3 = g.reduce(m3, 0.0, HfSum()) / nn;
  m4 = g.reduce(m4, 0.0, HfSum()) / nn;
  sxy = g.reduce(sxy, 0.0, HfSum());
  sxx = g.reduce(sxx, 0.0, HfSum());
  cross = g.reduce(cross, 0.0, HfSum());
  if (n == 0) {
    mn = nan;
    mx = nan;
    m2 = m3 = m4 = 0.0;
    ss = 0.0;
  }

  for (int j = 0; j < n_feat; ++j) {
    double r = 0.0;
    switch (kinds[j]) {
      case HF_COUNT: r = nn; break;
      case HF_MEAN: r = mean; break;
      case HF_STD: r = sqrt(m2); break;
      case HF_MIN: r = mn; break;
      case HF_MAX: r = mx; break;
      case HF_RMS: r = n > 0 ? sqrt(ss / nn) : 0.0; break;
      case HF_SKEW: r = m2 > 0.0 ? m3 / pow(m2, 1.5) : 0.0; break;
      case HF_KURT: r = m2 > 0.0 ? m4 / (m2 * m2) - 3.0 : 0.0; break;
      case HF_SLOPE: r = (n >= 2 && sxx > 0.0) ? sxy / sxx : 0.0; break;
      case HF_P2P: r = mx - mn; break;
      case HF_MCR: r = n >= 2 ? cross / (double)(n - 1) : 0.0; break;
      case HF_BAND: {
        double power = 0.0;
        if (n >= 2) {
          int k_lo = (int)ceil(band_lo[j] * window_secs);
          if (k_lo < 1) k_lo = 1;
          int k_hi = (int)ceil(band_hi[j] * window_secs);
          if (k_hi > (n + 1) / 2) k_hi = (n + 1) / 2;
          const double two_pi = 6.283185307179586;
          for (int k = k_lo + (int)g.rank(); k < k_hi; k += g.size()) {
            const double coeff = 2.0 * cos(two_pi * (double)k / nn);
            double s1 = 0.0, s2 = 0.0;
            for (int i = 0; i < n; ++i) {
              const double v = (x[i] - mean) + coeff * s1 - s2;
              s2 = s1;
              s1 = v;
            }
            const double mag2 = fmax(s1 * s1 + s2 * s2 - coeff * s1 * s2, 0.0);
            power += 2.0 * mag2 / (nn * nn);
          }
        }
        r = g.reduce(power, 0.0, HfSum());
        break;
      }
      default: r = nan;
    }
    if (g.rank() == 0) out[(long long)w * n_feat + j] = r;
  }
}

extern "C" __global__ void hyflow_features(const double* values, const long long* times, const unsigned* offsets,
                                           const long long* starts, int n_windows, double window_secs,
                                           const int* kinds, const double* band_lo, const double* band_hi, int n_feat,
                                           double* out) {
  __shared__ double scratch[33];
  const int w = blockIdx.x;
  if (w >= n_windows) return;  // uniform for the block
  hf_window(HfBlock{scratch}, w, values, times, offsets, starts, window_secs, kinds, band_lo, band_hi, n_feat, out);
}

extern "C" __global__ void hyflow_features_warp(const double* values, const long long* times,
                                                const unsigned* offsets, const long long* starts, int n_windows,
                                                double window_secs, const int* kinds, const double* band_lo,
                                                const double* band_hi, int n_feat, double* out) {
  const int w = (int)(blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5));
  if (w >= n_windows) return;  // uniform for the warp
  hf_window(HfWarp{}, w, values, times, offsets, starts, window_secs, kinds, band_lo, band_hi, n_feat, out);
}
