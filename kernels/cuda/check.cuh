// Turns CUDA runtime errors into pvengine status codes with a message.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "bindings_c/include/pvengine.h"

namespace pv::cuda {

inline int32_t status_of(cudaError_t err) {
  if (err == cudaSuccess) return PV_OK;
  if (err == cudaErrorMemoryAllocation) return PV_ERR_DEVICE_OUT_OF_MEMORY;
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) return PV_ERR_NO_DEVICE;
  return PV_ERR_CUDA;
}

#define PV_CUDA_TRY(expr)                                                               \
  do {                                                                                  \
    const cudaError_t pv_err_ = (expr);                                                 \
    if (pv_err_ != cudaSuccess) {                                                       \
      if (error) *error = std::string(#expr) + ": " + cudaGetErrorString(pv_err_);     \
      return ::pv::cuda::status_of(pv_err_);                                            \
    }                                                                                   \
  } while (0)

// Device memory that frees itself (move-only).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept : ptr_(other.ptr_) { other.ptr_ = nullptr; }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      if (ptr_) cudaFree(ptr_);
      ptr_ = other.ptr_;
      other.ptr_ = nullptr;
    }
    return *this;
  }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  // Frees what the buffer held, then allocates count elements.
  cudaError_t allocate(size_t count) {
    if (ptr_) cudaFree(ptr_), ptr_ = nullptr;
    return cudaMalloc(reinterpret_cast<void**>(&ptr_), count * sizeof(T));
  }
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
};

}  // namespace pv::cuda
