// A CUDA driver (libcuda.so.1) and NVML (libnvidia-ml.so.1) that run on the CPU, for tests:
// hyflow's CUDA engines (src/compute/cuda.rs, src/compute/detect/cuda.rs) run unchanged,
// through cudarc, against it, and the kernels of cuda/ (features.cu, score.cu) run over
// hyflow_emu.h (their launches, with the checks of their buffers, are in fake_kernels.cpp).
// Built by build.rs with the `kernel-emulation` feature; tests/fake_cuda.rs puts it first on
// LD_LIBRARY_PATH of a `hyflow` process.
//
// It has only the calls hyflow and cudarc make (cudarc names any other symbol it misses). It
// claims to be one H200 (compute capability 9.0, memory pools) and is stricter than a GPU
// where hyflow's design makes a claim:
// - Streams are lazy: queued work runs when something waits for it (an event or stream
//   synchronize, a stream waiting on an event, a synchronous copy, a free) or when an event
//   after it has been queried HYFLOW_FAKE_CUDA_LAG times (default 2). So a host that reads
//   results before their event has passed reads stale data, one that overwrites pinned inputs
//   before their copy ran sends the wrong data, and batches really are in flight together.
//   (Keep the lag finite: a GPU always finishes. With work that never finishes unless waited
//   for, a replay whose source waits for its sinks to catch up would wait forever.)
// - Device memory starts as 0xff bytes (NaN as doubles): what was not copied in shows.
// - Every copy and every kernel buffer is checked against its allocation when the work runs
//   (so a use after free is caught); copies to the host into write-combined memory are refused
//   (legal on a GPU, but slow to read).
// - Launches check the block size, that the function's module was compiled for this device
//   (PTX `.target sm_90` or older) and that the grid covers the batch.
// A failed check prints `fake cuda: ...` on stderr and fails the context for good
// (CUDA_ERROR_ILLEGAL_ADDRESS from every later call), as a faulting kernel does on a GPU.
//
// Fault injection, HYFLOW_FAKE_CUDA_FAULT: `launch:N` makes the N-th launch fault when it runs
// (`features:N`: the N-th launch of a feature kernel; `detect:N`: of the detector kernel)
// (the same sticky error); `oom:BYTES` makes device allocations fail once BYTES are allocated
// (CUDA_ERROR_OUT_OF_MEMORY, not sticky); `null-pinned` makes pinned allocations "succeed" with
// a null pointer (a broken driver: cudarc asserts, so a worker panics).
// With HYFLOW_FAKE_CUDA_STATS=FILE, counts are written to FILE at exit, `key value` per line.

#include "fake_driver.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#define API extern "C" __attribute__((visibility("default")))

namespace fake {
std::map<std::string, unsigned long long>& stats = *new std::map<std::string, unsigned long long>;
}  // namespace fake

using namespace fake;

namespace {

constexpr CUresult OK = 0, INVALID_VALUE = 1, OUT_OF_MEMORY = 2, NOT_INITIALIZED = 3, INVALID_DEVICE = 101,
                   INVALID_IMAGE = 200, UNSUPPORTED_PTX = 222, INVALID_HANDLE = 400, NOT_FOUND = 500,
                   NOT_READY = 600, ILLEGAL_ADDRESS = 700;
constexpr unsigned WRITECOMBINED = 4, DISABLE_TIMING = 2;
constexpr int SM = 90;  // an H200

struct Alloc {
  size_t bytes;
  bool device;
  unsigned flags;
};

struct Event {
  unsigned flags = 0;
  struct Stream* stream = nullptr;
  unsigned long long gen = 0, done_gen = 0;  // records made / passed
  int queries = 0;
  double ms = 0;
  bool destroyed = false;
};

struct Stream {
  std::deque<std::function<bool()>> ops;  // false: the op failed (the context is then failed)
  int launches = 0;                       // launches queued, not yet run
};

struct Module {
  std::string ptx;
  int sm = 0;
};

struct Function {
  Module* module;
  std::string name;
};

// Never destroyed: the stats are written by a destructor function that may run after static
// objects are gone.
std::recursive_mutex& mu = *new std::recursive_mutex;  // one lock: every worker thread calls in
bool initialized = false;
CUresult sticky = OK;
int lag = 2;
long long fault_launch = -1, fault_features = -1, fault_detect = -1;
bool null_pinned = false;
size_t oom_bytes = 0;
size_t device_bytes = 0;
std::map<uintptr_t, Alloc> allocs;
std::set<Stream*> streams;
int context_token = 0;
thread_local void* current_context = nullptr;
const auto loaded = std::chrono::steady_clock::now();

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - loaded).count();
}

std::string hex(unsigned long long p) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", p);
  return b;
}


// The allocation holding [p, p + n), or null.
const Alloc* find(uintptr_t p, size_t n) {
  auto it = allocs.upper_bound(p);
  if (it == allocs.begin()) return nullptr;
  --it;
  if (p + n > it->first + it->second.bytes) return nullptr;
  return &it->second;
}


// Runs `s`'s queued work until `until` (if given) has passed its record number `gen` (its
// latest when 0), or all of it.
void run(Stream* s, Event* until = nullptr, unsigned long long gen = 0) {
  while (!s->ops.empty()) {
    if (until && until->done_gen >= (gen ? gen : until->gen)) return;
    auto op = std::move(s->ops.front());
    s->ops.pop_front();
    if (sticky != OK) continue;  // after a fault nothing more runs
    op();
  }
}

void run_all() {
  for (Stream* s : streams) run(s);
}

Stream* stream_of(void* h) { return static_cast<Stream*>(h); }

void configure() {
  if (const char* l = std::getenv("HYFLOW_FAKE_CUDA_LAG")) lag = std::atoi(l);
  if (const char* f = std::getenv("HYFLOW_FAKE_CUDA_FAULT")) {
    std::string s(f);
    if (s.rfind("launch:", 0) == 0) fault_launch = std::atoll(s.c_str() + 7);
    if (s.rfind("features:", 0) == 0) fault_features = std::atoll(s.c_str() + 9);
    if (s.rfind("detect:", 0) == 0) fault_detect = std::atoll(s.c_str() + 7);
    if (s.rfind("oom:", 0) == 0) oom_bytes = std::strtoull(s.c_str() + 4, nullptr, 10);
    if (s == "null-pinned") null_pinned = true;
  }
}

// Queues `op` on stream `h`; the null stream runs everything before it and `op` now.
CUresult enqueue(void* h, std::function<bool()> op) {
  if (h == nullptr) {
    run_all();
    if (sticky == OK) op();
    return sticky;
  }
  stream_of(h)->ops.push_back(std::move(op));
  return OK;
}

CUresult device_alloc(CUdeviceptr* out, size_t bytes) {
  if (!initialized) return NOT_INITIALIZED;
  if (sticky != OK) return sticky;
  if (out == nullptr || bytes == 0) return INVALID_VALUE;
  if (oom_bytes != 0 && device_bytes + bytes > oom_bytes) {
    stats["out_of_memory"] += 1;
    return OUT_OF_MEMORY;
  }
  const size_t rounded = (bytes + 255) / 256 * 256;
  void* p = std::aligned_alloc(256, rounded);
  if (p == nullptr) return OUT_OF_MEMORY;
  std::memset(p, 0xff, rounded);
  allocs[(uintptr_t)p] = Alloc{bytes, true, 0};
  device_bytes += bytes;
  stats["device_allocs"] += 1;
  *out = (CUdeviceptr)(uintptr_t)p;
  return OK;
}

bool device_free(CUdeviceptr p) {
  auto it = allocs.find((uintptr_t)p);
  if (it == allocs.end() || !it->second.device) {
    fail("freeing " + hex(p) + ", which is not a device allocation");
    return false;
  }
  device_bytes -= it->second.bytes;
  allocs.erase(it);
  std::free((void*)(uintptr_t)p);
  return true;
}

}  // namespace

void fake::fail(const std::string& why) {
  std::fprintf(stderr, "fake cuda: %s\n", why.c_str());
  if (sticky == OK) sticky = ILLEGAL_ADDRESS;
  stats["failures"] += 1;
}

bool fake::check_device(CUdeviceptr p, size_t n, const char* what) {
  const Alloc* a = find((uintptr_t)p, n);
  if (a && a->device) return true;
  fail(std::string(what) + ": " + std::to_string(n) + " bytes at " + hex(p) +
       " are not inside one device allocation");
  return false;
}

// ---- initialisation, devices, contexts ----

API CUresult cuInit(unsigned) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (!initialized) configure();
  initialized = true;
  return OK;
}

API CUresult cuDriverGetVersion(int* v) {
  *v = 12080;
  return OK;
}

API CUresult cuDeviceGetCount(int* n) {
  *n = 1;
  return initialized ? OK : NOT_INITIALIZED;
}

API CUresult cuDeviceGet(int* dev, int ordinal) {
  if (!initialized) return NOT_INITIALIZED;
  if (ordinal != 0) return INVALID_DEVICE;
  *dev = 0;
  return OK;
}

API CUresult cuDeviceGetAttribute(int* v, int attr, int dev) {
  if (dev != 0) return INVALID_DEVICE;
  switch (attr) {
    case 16: *v = 132; break;       // multiprocessors
    case 75: *v = SM / 10; break;   // compute capability major
    case 76: *v = SM % 10; break;   // minor
    case 115: *v = 1; break;        // memory pools supported
    default: *v = 0;
  }
  return OK;
}

API CUresult cuDeviceGetName(char* name, int len, int dev) {
  if (dev != 0) return INVALID_DEVICE;
  std::snprintf(name, len, "hyflow fake CUDA device (the CPU)");
  return OK;
}

API CUresult cuDeviceTotalMem_v2(size_t* bytes, int dev) {
  if (dev != 0) return INVALID_DEVICE;
  *bytes = (size_t)141 << 30;
  return OK;
}

API CUresult cuDevicePrimaryCtxRetain(void** ctx, int dev) {
  if (dev != 0) return INVALID_DEVICE;
  *ctx = &context_token;
  return OK;
}

API CUresult cuDevicePrimaryCtxRelease_v2(int dev) { return dev == 0 ? OK : INVALID_DEVICE; }

API CUresult cuCtxSetCurrent(void* ctx) {
  current_context = ctx;
  return OK;
}

API CUresult cuCtxGetCurrent(void** ctx) {
  *ctx = current_context;
  return OK;
}

API CUresult cuCtxSynchronize() {
  std::lock_guard<std::recursive_mutex> g(mu);
  run_all();
  return sticky;
}

API CUresult cuGetErrorName(CUresult e, const char** s) {
  switch (e) {
    case OK: *s = "CUDA_SUCCESS"; break;
    case OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case NOT_READY: *s = "CUDA_ERROR_NOT_READY"; break;
    case ILLEGAL_ADDRESS: *s = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
    default: *s = "CUDA_ERROR (fake driver)";
  }
  return OK;
}

API CUresult cuGetErrorString(CUresult e, const char** s) { return cuGetErrorName(e, s); }

// ---- modules ----

API CUresult cuModuleLoadData(void** module, const void* image) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  std::string ptx((const char*)image);
  auto at = ptx.find(".target sm_");
  if (at == std::string::npos) return INVALID_IMAGE;
  const int sm = std::atoi(ptx.c_str() + at + 11);
  stats["ptx_target_sm"] = sm;
  if (sm > SM) return UNSUPPORTED_PTX;
  *module = new Module{std::move(ptx), sm};
  return OK;
}

API CUresult cuModuleGetFunction(void** f, void* module, const char* name) {
  auto* m = static_cast<Module*>(module);
  const std::string n(name);
  if ((n != "hyflow_features" && n != "hyflow_features_warp" && n != "hyflow_detect") ||
      m->ptx.find(".entry " + n + "(") == std::string::npos)
    return NOT_FOUND;
  *f = new Function{m, n};
  return OK;
}

API CUresult cuModuleUnload(void* module) {
  delete static_cast<Module*>(module);  // functions of it are leaked, as handles
  return OK;
}

// ---- streams and events ----

API CUresult cuStreamCreate(void** s, unsigned) {
  std::lock_guard<std::recursive_mutex> g(mu);
  auto* stream = new Stream;
  streams.insert(stream);
  *s = stream;
  return OK;
}

API CUresult cuStreamDestroy_v2(void* s) {
  std::lock_guard<std::recursive_mutex> g(mu);
  run(stream_of(s));  // work queued before the destroy still completes
  streams.erase(stream_of(s));
  delete stream_of(s);
  return OK;
}

API CUresult cuStreamSynchronize(void* s) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (s == nullptr) run_all(); else run(stream_of(s));
  return sticky;
}

API CUresult cuEventCreate(void** e, unsigned flags) {
  auto* ev = new Event;
  ev->flags = flags;
  *e = ev;
  return OK;
}

API CUresult cuEventDestroy_v2(void* e) {
  std::lock_guard<std::recursive_mutex> g(mu);
  static_cast<Event*>(e)->destroyed = true;  // kept: queued records may still point at it
  return OK;
}

API CUresult cuEventRecord(void* e, void* s) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  auto* ev = static_cast<Event*>(e);
  if (ev->destroyed) return INVALID_HANDLE;
  const unsigned long long gen = ++ev->gen;
  ev->queries = 0;
  ev->stream = s ? stream_of(s) : nullptr;
  return enqueue(s, [ev, gen] {
    ev->done_gen = gen;
    ev->ms = now_ms();
    return true;
  });
}

// Runs the work up to `ev`'s last record.
void reach(Event* ev) {
  if (ev->done_gen != ev->gen && ev->stream) run(ev->stream, ev);
}

API CUresult cuEventQuery(void* e) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  auto* ev = static_cast<Event*>(e);
  if (ev->done_gen == ev->gen) return OK;
  if (++ev->queries < lag) {
    stats["not_ready"] += 1;
    return NOT_READY;
  }
  reach(ev);
  return sticky;
}

API CUresult cuEventSynchronize(void* e) {
  std::lock_guard<std::recursive_mutex> g(mu);
  reach(static_cast<Event*>(e));
  return sticky;
}

API CUresult cuStreamWaitEvent(void* s, void* e, unsigned) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  auto* ev = static_cast<Event*>(e);
  if (ev->done_gen == ev->gen || ev->stream == nullptr || ev->stream == s) return OK;  // stream order
  // Work queued on `s` from now on waits for the event's work on its own stream.
  Stream* other = ev->stream;
  const unsigned long long gen = ev->gen;
  return enqueue(s, [other, ev, gen] {
    if (streams.count(other)) run(other, ev, gen);
    return true;
  });
}

static CUresult elapsed(float* ms, void* a, void* b) {
  std::lock_guard<std::recursive_mutex> g(mu);
  auto *start = static_cast<Event*>(a), *end = static_cast<Event*>(b);
  if ((start->flags | end->flags) & DISABLE_TIMING) return INVALID_HANDLE;
  if (start->gen == 0 || end->gen == 0) return INVALID_HANDLE;
  if (start->done_gen != start->gen || end->done_gen != end->gen) return NOT_READY;
  *ms = (float)(end->ms - start->ms);
  return OK;
}

API CUresult cuEventElapsedTime(float* ms, void* a, void* b) { return elapsed(ms, a, b); }
API CUresult cuEventElapsedTime_v2(float* ms, void* a, void* b) { return elapsed(ms, a, b); }

// ---- memory ----

API CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) {
  std::lock_guard<std::recursive_mutex> g(mu);
  return device_alloc(p, bytes);
}

API CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, void*) {
  std::lock_guard<std::recursive_mutex> g(mu);
  return device_alloc(p, bytes);  // usable in stream order, so usable now
}

API CUresult cuMemFree_v2(CUdeviceptr p) {
  std::lock_guard<std::recursive_mutex> g(mu);
  run_all();  // synchronous, like the real one
  if (sticky != OK) return sticky;
  return device_free(p) ? OK : sticky;
}

API CUresult cuMemFreeAsync(CUdeviceptr p, void* s) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  return enqueue(s, [p] { return device_free(p); });
}

API CUresult cuMemHostAlloc(void** p, size_t bytes, unsigned flags) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  if (bytes == 0) return INVALID_VALUE;
  if (null_pinned) {
    *p = nullptr;
    return OK;
  }
  void* h = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
  if (h == nullptr) return OUT_OF_MEMORY;
  allocs[(uintptr_t)h] = Alloc{bytes, false, flags};
  stats[flags & WRITECOMBINED ? "pinned_allocs_write_combined" : "pinned_allocs"] += 1;
  *p = h;
  return OK;
}

API CUresult cuMemFreeHost(void* p) {
  std::lock_guard<std::recursive_mutex> g(mu);
  run_all();
  auto it = allocs.find((uintptr_t)p);
  if (it == allocs.end() || it->second.device) {
    fail("cuMemFreeHost of memory cuMemHostAlloc did not give");
    return INVALID_VALUE;
  }
  allocs.erase(it);
  std::free(p);
  return sticky;
}

API CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, void* s) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  if (find((uintptr_t)src, n) == nullptr) {
    // Pageable memory: staged now, as the driver does, so the caller may reuse it.
    stats["htod_pageable_bytes"] += n;
    auto staged = std::make_shared<std::string>((const char*)src, n);
    return enqueue(s, [dst, n, staged] {
      if (!check_device(dst, n, "copy to device")) return false;
      std::memcpy((void*)(uintptr_t)dst, staged->data(), n);
      return true;
    });
  }
  stats["htod_pinned_bytes"] += n;
  return enqueue(s, [dst, src, n] {
    const Alloc* a = find((uintptr_t)src, n);
    if (a == nullptr || a->device) {
      fail("copy to device from pinned memory freed before the copy ran");
      return false;
    }
    if (!check_device(dst, n, "copy to device")) return false;
    std::memcpy((void*)(uintptr_t)dst, src, n);
    return true;
  });
}

API CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, void* s) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  const Alloc* a = find((uintptr_t)dst, n);
  if (a == nullptr) {
    // Pageable memory: the copy is synchronous.
    stats["dtoh_pageable_bytes"] += n;
    if (s) run(stream_of(s)); else run_all();
    if (sticky == OK && check_device(src, n, "copy from device")) std::memcpy(dst, (void*)(uintptr_t)src, n);
    return sticky;
  }
  if (a->flags & WRITECOMBINED) {
    fail("copy from device into write-combined host memory (slow for the host to read)");
    return sticky;
  }
  stats["dtoh_pinned_bytes"] += n;
  return enqueue(s, [dst, src, n] {
    const Alloc* h = find((uintptr_t)dst, n);
    if (h == nullptr || h->device) {
      fail("copy from device into pinned memory freed before the copy ran");
      return false;
    }
    if (!check_device(src, n, "copy from device")) return false;
    std::memcpy(dst, (void*)(uintptr_t)src, n);
    return true;
  });
}

API CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
  std::lock_guard<std::recursive_mutex> g(mu);
  run_all();
  if (sticky == OK && check_device(dst, n, "copy to device")) std::memcpy((void*)(uintptr_t)dst, src, n);
  return sticky;
}

API CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
  std::lock_guard<std::recursive_mutex> g(mu);
  run_all();
  if (sticky == OK && check_device(src, n, "copy from device")) std::memcpy(dst, (void*)(uintptr_t)src, n);
  return sticky;
}

// ---- launches ----

API CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shared, void* s, void** params, void** extra) {
  std::lock_guard<std::recursive_mutex> g(mu);
  if (sticky != OK) return sticky;
  auto* fn = static_cast<Function*>(f);
  if (fn->module->sm > SM || extra != nullptr || params == nullptr) return INVALID_VALUE;
  if (gx == 0 || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx == 0 || bx > 1024 || bx % 32 != 0 ||
      shared > 48 * 1024)
    return INVALID_VALUE;
  const bool detect = fn->name == "hyflow_detect";
  const long long number = (long long)++stats["launches"];
  // The launch's number among those of its kernel kind.
  const long long kind_number = (long long)++stats[detect ? "queued_detect" : "queued_features"];
  const long long kind_fault = detect ? fault_detect : fault_features;
  // Arguments are read now (the driver copies them at launch), buffers when it runs.
  std::vector<unsigned char> args;
  std::vector<size_t> at;
  static const std::vector<size_t> feature_args = {8, 8, 8, 8, 4, 8, 8, 8, 8, 4, 8},
                                   detect_args = {8, 8, 4, 8, 8, 8, 4, 8, 8, 8, 8, 8, 4, 8, 8, 8, 8, 8, 8, 8, 8};
  const std::vector<size_t>& sizes = detect ? detect_args : feature_args;
  for (size_t i = 0; i < sizes.size(); ++i) {
    at.push_back(args.size());
    args.insert(args.end(), (unsigned char*)params[i], (unsigned char*)params[i] + sizes[i]);
  }
  Stream* stream = s ? stream_of(s) : nullptr;
  if (stream) {
    stream->launches += 1;
    unsigned long long queued = 0;
    for (Stream* t : streams) queued = std::max(queued, (unsigned long long)t->launches);
    stats["max_launches_queued_on_a_stream"] = std::max(stats["max_launches_queued_on_a_stream"], queued);
  }
  return enqueue(s, [=]() mutable {
    if (stream) stream->launches -= 1;
    if (number == fault_launch || kind_number == kind_fault) {
      // Work queued on the other streams before the fault runs first, whichever stream the
      // host happens to synchronise first: a test can count on the launches before the fault
      // having run (without this, which ones did depended on thread scheduling).
      for (Stream* t : streams) {
        if (t != stream) run(t);
      }
      fail("launch " + std::to_string(number) + " faults (HYFLOW_FAKE_CUDA_FAULT)");
      return false;
    }
    std::vector<void*> p(at.size());
    for (size_t i = 0; i < at.size(); ++i) p[i] = args.data() + at[i];
    const auto t0 = now_ms();
    const bool ok = detect ? launch_detect(gx, bx, p.data()) : launch_features(fn->name == "hyflow_features_warp", gx, bx, p.data());
    stats["kernel_us"] += (unsigned long long)((now_ms() - t0) * 1000);
    return ok;
  });
}

// ---- NVML: the energy counter of device 0, as if it drew 100 W since the library loaded ----

API int nvmlInit_v2() { return 0; }
API int nvmlShutdown() { return 0; }

API int nvmlDeviceGetHandleByIndex_v2(unsigned index, void** device) {
  if (index != 0) return 2;  // NVML_ERROR_INVALID_ARGUMENT
  *device = &context_token;
  return 0;
}

API int nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* millijoules) {
  if (device != &context_token) return 2;
  *millijoules = 1000000ULL + (unsigned long long)(now_ms() * 100.0);
  return 0;
}

// ---- counts for the tests ----

__attribute__((destructor)) static void write_stats() {
  const char* path = std::getenv("HYFLOW_FAKE_CUDA_STATS");
  if (path == nullptr) return;
  std::lock_guard<std::recursive_mutex> g(mu);
  if (FILE* f = std::fopen(path, "w")) {
    for (const auto& [k, v] : stats) std::fprintf(f, "%s %llu\n", k.c_str(), v);
    std::fprintf(f, "sticky_error %d\n", sticky);
    std::fclose(f);
  }
}
