// The kernel launches of the fake CUDA driver (see fake_driver.cpp): cuda/features.cu and
// cuda/score.cu compiled over the emulation header, each launch checked against the buffers
// it reads and writes before it runs.
#include "fake_driver.h"

#include "hyflow_emu.h"

#include "../features.cu"
#include "../score.cu"

#include <string>
#include <vector>

namespace fake {

// A feature kernel's launch (both take the same arguments), checked against its buffers when
// it runs. `warp`: hyflow_features_warp, block / 32 windows per block.
bool launch_features(bool warp, unsigned grid, unsigned block, void** params) {
  const CUdeviceptr values = *(CUdeviceptr*)params[0], times = *(CUdeviceptr*)params[1],
                    offsets = *(CUdeviceptr*)params[2], starts = *(CUdeviceptr*)params[3];
  const int n = *(int*)params[4];
  const double secs = *(double*)params[5];
  const CUdeviceptr kinds = *(CUdeviceptr*)params[6], lo = *(CUdeviceptr*)params[7], hi = *(CUdeviceptr*)params[8];
  const int nf = *(int*)params[9];
  const CUdeviceptr out = *(CUdeviceptr*)params[10];
  {
    const unsigned long long covered = (unsigned long long)grid * (warp ? block / 32 : 1);
    if (n < 0 || nf < 0 || covered < (unsigned long long)n) {
      fail("feature kernel: grid " + std::to_string(grid) + " of " + std::to_string(block) + " covers " +
           std::to_string(covered) + " of " + std::to_string(n) + " windows");
      return false;
    }
    if (!check_device(offsets, (n + 1) * sizeof(unsigned), "hyflow_features offsets")) return false;
    const size_t total = ((const unsigned*)(uintptr_t)offsets)[n];
    const bool ok = check_device(values, total * 8, "hyflow_features values") &&
                    check_device(times, total * 8, "hyflow_features times") &&
                    check_device(starts, n * 8, "hyflow_features starts") &&
                    check_device(kinds, nf * 4, "hyflow_features kinds") &&
                    check_device(lo, nf * 8, "hyflow_features band_lo") &&
                    check_device(hi, nf * 8, "hyflow_features band_hi") &&
                    check_device(out, (size_t)n * nf * 8, "hyflow_features out");
    if (!ok) return false;
    hyflow_emu::launch(dim3{grid, 1, 1}, dim3{block, 1, 1}, [&] {
      (warp ? hyflow_features_warp : hyflow_features)(
          (const double*)values, (const long long*)times, (const unsigned*)offsets, (const long long*)starts, n,
          secs, (const int*)kinds, (const double*)lo, (const double*)hi, nf, (double*)out);
    });
    stats[warp ? "launches_warp" : "launches_block"] += 1;
    return true;
  }
}

// A detector kernel launch (cuda/score.cu), checked against its buffers when it runs.
bool launch_detect(unsigned grid, unsigned block, void** params) {
  auto ptr = [&](int i) { return *(CUdeviceptr*)params[i]; };
  const int n = *(int*)params[2], cells = *(int*)params[6], nseg = *(int*)params[12];
  const CUdeviceptr x = ptr(0), bucket = ptr(1), kinds = ptr(3), prm = ptr(4), cell_at = ptr(5), order = ptr(7),
                    offsets = ptr(8), slots = ptr(9), patch_of = ptr(10), patch = ptr(11), state = ptr(13),
                    raw = ptr(14), after = ptr(15), learn = ptr(16), gate = ptr(17), seen0 = ptr(18),
                    gated = ptr(19), fate = ptr(20);
  if (n <= 0 || cells < n || nseg <= 0 || (unsigned long long)grid * block < (unsigned long long)nseg) {
    fail("detector kernel: grid " + std::to_string(grid) + " of " + std::to_string(block) + " for " +
         std::to_string(nseg) + " segments of " + std::to_string(n) + " watches, " + std::to_string(cells) +
         " cells per sensor");
    return false;
  }
  if (!check_device(offsets, (nseg + 1) * 4, "hyflow_detect seg_offsets") ||
      !check_device(slots, nseg * 4, "hyflow_detect seg_slot") ||
      !check_device(patch_of, nseg * 4, "hyflow_detect seg_patch") ||
      !check_device(kinds, n * 4, "hyflow_detect kinds") || !check_device(prm, n * 32, "hyflow_detect params") ||
      !check_device(cell_at, n * 4, "hyflow_detect cell_at") ||
      !check_device(learn, n * 3 * 4, "hyflow_detect learn") || !check_device(gate, n * 8, "hyflow_detect gate") ||
      !check_device(seen0, nseg * 4, "hyflow_detect seen0") ||
      !check_device(gated, (size_t)nseg * n * 4, "hyflow_detect gated"))
    return false;
  const size_t rows = ((const unsigned*)(uintptr_t)offsets)[nseg], m = rows * n;
  if (!check_device(order, rows * 4, "hyflow_detect order") || !check_device(x, m * 8, "hyflow_detect x") ||
      !check_device(bucket, m * 4, "hyflow_detect bucket") || !check_device(raw, m * 8, "hyflow_detect raw") ||
      !check_device(after, m * sizeof(HfCell), "hyflow_detect after") ||
      !check_device(fate, m * 4, "hyflow_detect fate"))
    return false;
  // A detector's watches are consecutive (the kernel walks them as one).
  const int* lrn = (const int*)(uintptr_t)learn;
  for (int j = 1; j < n; ++j)
    for (int i = 0; i + 1 < j; ++i)
      if (lrn[3 * i + 2] == lrn[3 * j + 2] && lrn[3 * (j - 1) + 2] != lrn[3 * j + 2]) {
        fail("hyflow_detect: the watches of detector " + std::to_string(lrn[3 * j + 2]) + " are not consecutive");
        return false;
      }
  // Every window once; every cell a window scores inside its watch's cells.
  std::vector<bool> seen(rows, false);
  const int* at = (const int*)(uintptr_t)cell_at;
  for (size_t k = 0; k < rows; ++k) {
    const int w = ((const int*)(uintptr_t)order)[k];
    if (w < 0 || (size_t)w >= rows || seen[w]) {
      fail("hyflow_detect: order is not a permutation of the windows");
      return false;
    }
    seen[w] = true;
    for (int j = 0; j < n; ++j) {
      const int b = ((const int*)(uintptr_t)bucket)[(size_t)w * n + j];
      const int end = j + 1 < n ? at[j + 1] : cells;
      if (b < 0 || at[j] + b >= end) {
        fail("hyflow_detect: window " + std::to_string(w) + " watch " + std::to_string(j) + " scores cell " +
             std::to_string(at[j] + b) + ", outside its watch's cells");
        return false;
      }
    }
  }
  // Every slot's and patch's block inside its buffer.
  for (int i = 0; i < nseg; ++i) {
    const unsigned slot = ((const unsigned*)(uintptr_t)slots)[i];
    const int p = ((const int*)(uintptr_t)patch_of)[i];
    if (!check_device(state, ((size_t)slot + 1) * cells * sizeof(HfCell), "hyflow_detect state") ||
        (p >= 0 && !check_device(patch, ((size_t)p + 1) * cells * sizeof(HfCell), "hyflow_detect patch")))
      return false;
  }
  hyflow_emu::launch(dim3{grid, 1, 1}, dim3{block, 1, 1}, [&] {
    hyflow_detect((const double*)x, (const int*)bucket, n, (const int*)kinds, (const double*)prm, at, cells,
                  (const int*)order, (const unsigned*)offsets, (const unsigned*)slots, (const int*)patch_of,
                  (const HfCell*)patch, nseg, (HfCell*)state, (double*)raw, (HfCell*)after, lrn, (const double*)gate,
                  (const unsigned*)seen0, (unsigned*)gated, (int*)fate);
  });
  stats["launches_detect"] += 1;
  stats["detect_windows"] += rows;
  stats["detect_out_bytes"] += m * (8 + sizeof(HfCell) + 4);
  return true;
}

}  // namespace fake
