#include <cuda_runtime.h>

#include <cstdio>
#include <string>

#include "kernels/cuda/launchers.h"

namespace pv::cuda {

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return count;
}

std::string device_summary() {
  std::string out;
  const int count = device_count();
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    char line[256];
    std::snprintf(line, sizeof line, "%d: %s (sm_%d%d, %.1f GiB)\n", i, prop.name, prop.major,
                  prop.minor, double(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
    out += line;
  }
  return out;
}

}  // namespace pv::cuda
