// PV_HD marks the math that both backends compile: host+device under nvcc, plain inline elsewhere.
#pragma once

#if defined(__CUDACC__)
#define PV_HD __host__ __device__ __forceinline__
#else
#define PV_HD inline
#endif
