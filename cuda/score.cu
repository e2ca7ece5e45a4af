// The per-feature detectors with their state kept on the device (ewma-z, level-z, cusum,
// stuck, seasonal-z): cells of state per (sensor slot, watched detector feature), updated in
// place in the same order and with the same arithmetic as the CPU reference
// (src/detect/cell.rs `step`, which runs detect::Ewma, Level, Cusum, Stuck and the seasonal
// bucket step), so that both give the same scores bit for bit (NVRTC compiles it with FMA
// contraction off; the emulation build with -ffp-contract=off).
//
// A sensor's cells form a block of `block` cells; watch j owns cells cell_at[j] ..
// cell_at[j + 1] of it (one, or one per season bucket for seasonal-z), and window w scores it
// against cell cell_at[j] + bucket[w * n_watch + j].
//
// Windows arrive grouped into segments, one per sensor slot present in the batch: the windows
// of segment s are order[seg_offsets[s] .. seg_offsets[s + 1]], in time order. One thread walks
// one segment. It first loads the slot's block from `patch` when the host says the device copy
// is stale (seg_patch[s] >= 0: the host scored that sensor itself since), then for each window
// w and watch j scores x[w * n_watch + j] into raw[w * n_watch + j] (the value the CPU's
// detect::raw_score takes for that feature) and copies the cell it stepped to
// after[w * n_watch + j], so that the host keeps a current mirror of the state and can fall
// back on it without losing any.
//
// Compiled by NVRTC for the GPU and, over cuda/emu/hyflow_emu.h, as C++ for tests. No includes.

#define HF_EWMA 0
#define HF_LEVEL 1
#define HF_CUSUM 2
#define HF_STUCK 3
#define HF_SEASONAL 4

// One cell of state; fields by kind (src/detect/cell.rs has the same layout): ewma-z (n,
// a = mean, b = variance); level-z and each bucket of seasonal-z (n, a = level, b = mean
// absolute residual); cusum (n, a = baseline, b = mean absolute residual, c = upper sum,
// d = lower sum); stuck (n = 1 once a value was seen, a = previous value, run).
struct HfCell {
  double a, b, c, d;
  unsigned n, run;
};

__device__ inline unsigned hf_inc(unsigned n) { return n == 0xffffffffu ? n : n + 1; }

// level-z (detect::Level) for a finite x.
__device__ double hf_level(const double* p, HfCell& c, double x) {
  if (c.n == 0) {
    c.a = x;
    c.n = 1;
    return 0.0;
  }
  const double r = x - c.a;
  const double sd = fmax(c.b * 1.2533141373155003, 1e-9 * fmax(fabs(c.a), 1.0));
  const double z = c.b > 0.0 ? fabs(r) / sd : 0.0;
  c.a += p[0] * r;
  c.b = c.b > 0.0 ? (1.0 - p[1]) * c.b + p[1] * fabs(r) : fabs(r);
  c.n = hf_inc(c.n);
  return z;
}

// Scores x against the cell, then learns it. p: the watch's 4 parameters (see src/detect/cell.rs).
__device__ double hf_step(int kind, const double* p, HfCell& c, double x) {
  const bool finite = x - x == 0.0;
  if (kind == HF_STUCK) {
    if (finite) {
      c.run = (c.n != 0 && c.a == x) ? hf_inc(c.run) : 0;
      c.n = 1;
      c.a = x;
    }
    return p[0] * (double)c.run / p[1];
  }
  if (!finite) return 0.0;
  if (kind == HF_EWMA) {
    double z = 0.0;
    if (c.n == 0) {
      c.a = x;
      c.b = 0.0;
    } else {
      z = fabs(x - c.a) / sqrt(c.b + 1e-9);
      const double d = x - c.a;
      c.a += p[0] * d;
      c.b = (1.0 - p[0]) * (c.b + p[0] * d * d);
    }
    c.n = hf_inc(c.n);
    return z;
  }
  if (kind == HF_SEASONAL) {
    // The bucket's level, scoring once the bucket has seen p[2] windows.
    const bool warm = (double)c.n >= p[2];
    const double z = hf_level(p, c, x);
    return warm ? z : 0.0;
  }
  if (kind == HF_LEVEL) return hf_level(p, c, x);
  // HF_CUSUM
  if (c.n == 0) {
    c.a = x;
    c.n = 1;
    return 0.0;
  }
  const double r = x - c.a;
  const double sd = c.b * 1.2533141373155003;
  double score = 0.0;
  if (sd > 0.0) {
    double z = r / sd;
    if (z < -1e6) z = -1e6;
    if (z > 1e6) z = 1e6;
    c.c = fmax(c.c + z - p[2], 0.0);
    c.d = fmax(c.d - z - p[2], 0.0);
    score = fmax(c.c, c.d);
  }
  if (score > p[3]) {
    c.a = x;
    c.c = 0.0;
    c.d = 0.0;
  } else {
    c.a += p[0] * r;
  }
  c.b = c.b > 0.0 ? (1.0 - p[1]) * c.b + p[1] * fmin(fabs(r), 10.0 * sd) : fabs(r);
  c.n = hf_inc(c.n);
  return score;
}

extern "C" __global__ void hyflow_detect(const double* x, const int* bucket, int n_watch, const int* kinds,
                                         const double* params, const int* cell_at, int block, const int* order,
                                         const unsigned* seg_offsets, const unsigned* seg_slot, const int* seg_patch,
                                         const HfCell* patch, int n_segments, HfCell* state, double* raw,
                                         HfCell* after) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= n_segments) return;
  HfCell* cells = state + (unsigned long long)seg_slot[s] * (unsigned long long)block;
  if (seg_patch[s] >= 0) {
    const HfCell* from = patch + (unsigned long long)seg_patch[s] * (unsigned long long)block;
    for (int i = 0; i < block; ++i) cells[i] = from[i];
  }
  for (unsigned k = seg_offsets[s]; k < seg_offsets[s + 1]; ++k) {
    const unsigned long long w = (unsigned long long)order[k] * (unsigned long long)n_watch;
    for (int j = 0; j < n_watch; ++j) {
      HfCell& c = cells[cell_at[j] + bucket[w + j]];
      raw[w + j] = hf_step(kinds[j], params + 4 * j, c, x[w + j]);
      after[w + j] = c;
    }
  }
}
