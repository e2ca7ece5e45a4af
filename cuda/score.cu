// The per-feature detectors with their state kept on the device (ewma-z, level-z, cusum,
// stuck, seasonal-z): cells of state per (sensor slot, watched detector feature), updated in
// place in the same order and with the same arithmetic as the CPU reference
// (src/stages/detect/cell.rs `step`, which runs detect::Ewma, Level, Cusum, Stuck and the seasonal
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
// Learn policies (src/stages/detect/mod.rs `Learn`; learn[3 * j] = HF_ALWAYS, HF_GATED or
// HF_REFERENCE, learn[3 * j + 1] = relearn or reference windows, learn[3 * j + 2] = the
// detector: its watches are consecutive). A detector with a policy is scored on copies of its
// cells; its raw score (the largest of its watches' non-NaN raws, at least 0, as the CPU's
// `pick`) decides whether the window is learned (`Learn::decide`, with the sensor's window
// count seen0[s] + k and its gated-in-a-row count gated[s * n_watch + j], kept per segment and
// watch and counted on here). A learned window steps the cells again (`hf_step` is
// deterministic: the same bits); a gated or frozen one leaves them; a re-baselined one zeroes
// all of the detector's cells (every season bucket) and steps this window into them.
// fate[w * n_watch + j] says which (HF_LEARNED, HF_KEPT, HF_REBASED) so that the host's mirror
// can zero those cells too.
//
// Compiled by NVRTC for the GPU and, over cuda/emu/hyflow_emu.h, as C++ for tests. No includes.

#define HF_EWMA 0
#define HF_LEVEL 1
#define HF_CUSUM 2
#define HF_STUCK 3
#define HF_SEASONAL 4

#define HF_ALWAYS 0
#define HF_GATED 1
#define HF_REFERENCE 2

#define HF_LEARNED 0
#define HF_KEPT 1
#define HF_REBASED 2

// One cell of state; fields by kind (src/stages/detect/cell.rs has the same layout): ewma-z (n,
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

// Scores x against the cell, then learns it. p: the watch's 4 parameters (see src/stages/detect/cell.rs).
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

// Learn::decide: HF_LEARNED, HF_KEPT or HF_REBASED for a window of raw score r, the sensor's
// seen-th (0-based), after `gated` gated windows in a row.
// `count` is an unsigned (relearn, reference windows) passed in an int.
__device__ inline int hf_decide(int policy, unsigned count, double gate, double r, unsigned seen, unsigned gated) {
  if (policy == HF_REFERENCE) return seen < count ? HF_LEARNED : HF_KEPT;
  if (policy != HF_GATED || r != r || r <= gate) return HF_LEARNED;
  if (count > 0 && (unsigned long long)gated + 1 >= (unsigned long long)count) return HF_REBASED;
  return HF_KEPT;
}

extern "C" __global__ void hyflow_detect(const double* x, const int* bucket, int n_watch, const int* kinds,
                                         const double* params, const int* cell_at, int block, const int* order,
                                         const unsigned* seg_offsets, const unsigned* seg_slot, const int* seg_patch,
                                         const HfCell* patch, int n_segments, HfCell* state, double* raw,
                                         HfCell* after, const int* learn, const double* gate, const unsigned* seen0,
                                         unsigned* gated, int* fate) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= n_segments) return;
  HfCell* cells = state + (unsigned long long)seg_slot[s] * (unsigned long long)block;
  if (seg_patch[s] >= 0) {
    const HfCell* from = patch + (unsigned long long)seg_patch[s] * (unsigned long long)block;
    for (int i = 0; i < block; ++i) cells[i] = from[i];
  }
  unsigned* counts = gated + (unsigned long long)s * (unsigned long long)n_watch;
  for (unsigned k = seg_offsets[s]; k < seg_offsets[s + 1]; ++k) {
    const unsigned long long w = (unsigned long long)order[k] * (unsigned long long)n_watch;
    const unsigned long long seen = (unsigned long long)seen0[s] + (k - seg_offsets[s]);
    const unsigned seen_u = seen > 0xffffffffull ? 0xffffffffu : (unsigned)seen;
    int j = 0;
    while (j < n_watch) {
      // Watches j .. e - 1 are one detector's.
      int e = j + 1;
      while (e < n_watch && learn[3 * e + 2] == learn[3 * j + 2]) ++e;
      const int policy = learn[3 * j];
      if (policy == HF_ALWAYS) {
        for (int i = j; i < e; ++i) {
          HfCell& c = cells[cell_at[i] + bucket[w + i]];
          raw[w + i] = hf_step(kinds[i], params + 4 * i, c, x[w + i]);
          after[w + i] = c;
          fate[w + i] = HF_LEARNED;
        }
        j = e;
        continue;
      }
      double r = 0.0;
      for (int i = j; i < e; ++i) {
        HfCell copy = cells[cell_at[i] + bucket[w + i]];
        raw[w + i] = hf_step(kinds[i], params + 4 * i, copy, x[w + i]);
        r = fmax(r, raw[w + i]);
      }
      const int f = hf_decide(policy, (unsigned)learn[3 * j + 1], gate[j], r, seen_u, counts[j]);
      const unsigned next = f == HF_KEPT ? (counts[j] == 0xffffffffu ? counts[j] : counts[j] + 1) : 0;
      for (int i = j; i < e; ++i) {
        if (f == HF_REBASED) {
          const int end = i + 1 < n_watch ? cell_at[i + 1] : block;
          for (int q = cell_at[i]; q < end; ++q) cells[q] = HfCell{0.0, 0.0, 0.0, 0.0, 0u, 0u};
        }
        HfCell& c = cells[cell_at[i] + bucket[w + i]];
        if (f != HF_KEPT) hf_step(kinds[i], params + 4 * i, c, x[w + i]);
        after[w + i] = c;
        fate[w + i] = f;
        counts[i] = next;
      }
      j = e;
    }
  }
}
