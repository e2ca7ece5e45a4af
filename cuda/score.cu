// The per-feature detectors with their state kept on the device (ewma-z, level-z, cusum,
// stuck): one cell of state per (sensor slot, watched detector feature), updated in place in
// the same order and with the same arithmetic as the CPU reference (src/detect/cell.rs `step`,
// which runs detect::Ewma, Level, Cusum and Stuck), so that both give the same scores bit for
// bit (NVRTC compiles it with FMA contraction off; the emulation build with -ffp-contract=off).
//
// Windows arrive grouped into segments, one per sensor slot present in the batch: the windows
// of segment s are order[seg_offsets[s] .. seg_offsets[s + 1]], in time order. One thread walks
// one segment. It first loads the slot's cells from `patch` when the host says the device copy
// is stale (seg_patch[s] >= 0: the host scored that sensor itself since), then for each window
// w and watch j scores x[w * n_watch + j] into raw[w * n_watch + j] (the value the CPU's
// detect::raw_score takes for that feature), and at the end copies the slot's cells to
// cells_out[s * n_watch + j], so that the host keeps a current mirror of the state it can fall
// back on without losing any.
//
// Compiled by NVRTC for the GPU and, over cuda/emu/hyflow_emu.h, as C++ for tests. No includes.

#define HF_EWMA 0
#define HF_LEVEL 1
#define HF_CUSUM 2
#define HF_STUCK 3

// One detector feature's state; fields by kind (src/detect/cell.rs has the same layout):
// ewma-z (n, a = mean, b = variance); level-z (n, a = level, b = mean absolute residual);
// cusum (n, a = baseline, b = mean absolute residual, c = upper sum, d = lower sum);
// stuck (n = 1 once a value was seen, a = previous value, run).
struct HfCell {
  double a, b, c, d;
  unsigned n, run;
};

__device__ inline unsigned hf_inc(unsigned n) { return n == 0xffffffffu ? n : n + 1; }

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
  if (c.n == 0) {
    c.a = x;
    c.n = 1;
    return 0.0;
  }
  const double r = x - c.a;
  if (kind == HF_LEVEL) {
    const double sd = fmax(c.b * 1.2533141373155003, 1e-9 * fmax(fabs(c.a), 1.0));
    const double z = c.b > 0.0 ? fabs(r) / sd : 0.0;
    c.a += p[0] * r;
    c.b = c.b > 0.0 ? (1.0 - p[1]) * c.b + p[1] * fabs(r) : fabs(r);
    c.n = hf_inc(c.n);
    return z;
  }
  // HF_CUSUM
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

extern "C" __global__ void hyflow_detect(const double* x, int n_watch, const int* kinds, const double* params,
                                         const int* order, const unsigned* seg_offsets, const unsigned* seg_slot,
                                         const int* seg_patch, const HfCell* patch, int n_segments, HfCell* state,
                                         double* raw, HfCell* cells_out) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= n_segments) return;
  HfCell* cells = state + (unsigned long long)seg_slot[s] * (unsigned long long)n_watch;
  if (seg_patch[s] >= 0) {
    const HfCell* from = patch + (unsigned long long)seg_patch[s] * (unsigned long long)n_watch;
    for (int j = 0; j < n_watch; ++j) cells[j] = from[j];
  }
  for (unsigned k = seg_offsets[s]; k < seg_offsets[s + 1]; ++k) {
    const unsigned long long w = (unsigned long long)order[k] * (unsigned long long)n_watch;
    for (int j = 0; j < n_watch; ++j) raw[w + j] = hf_step(kinds[j], params + 4 * j, cells[j], x[w + j]);
  }
  HfCell* out = cells_out + (unsigned long long)s * (unsigned long long)n_watch;
  for (int j = 0; j < n_watch; ++j) out[j] = cells[j];
}
