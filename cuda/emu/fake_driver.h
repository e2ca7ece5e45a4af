// What the two files of the fake CUDA driver share (see fake_driver.cpp): the driver's
// checks, its counts, and the kernel launches of fake_kernels.cpp.
#pragma once

#include <cstddef>
#include <map>
#include <string>

namespace fake {

using CUresult = int;
using CUdeviceptr = unsigned long long;

// Prints `fake cuda: why` and fails the context for good (as a faulting kernel does).
void fail(const std::string& why);
// True when [p, p + n) lies inside one device allocation; else fails the context.
bool check_device(CUdeviceptr p, size_t n, const char* what);
// Counts written to HYFLOW_FAKE_CUDA_STATS at exit.
extern std::map<std::string, unsigned long long>& stats;

// Runs a launch of hyflow_features (`warp` false) or hyflow_features_warp, or of
// hyflow_detect, with the driver's copies of its arguments, after checking every buffer it
// reads or writes and that the grid covers the batch. False when a check failed.
bool launch_features(bool warp, unsigned grid, unsigned block, void** params);
bool launch_detect(unsigned grid, unsigned block, void** params);

}  // namespace fake
