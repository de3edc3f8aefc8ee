// A stored value read as float, for the element code the CUDA kernels and
// their CPU twins share (group_norm_kernel.hpp, ms_deform_attn_kernel.hpp):
// float and double convert; under nvcc, half and bfloat16 through their
// intrinsics (the CPU loops see float only). No LibTorch here.
#pragma once

#if defined(__CUDACC__)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#define RASS_LOAD_HD __host__ __device__ __forceinline__
#else
#define RASS_LOAD_HD inline
#endif

namespace rass::nn {

template <class T>
RASS_LOAD_HD float load_float(const T* p) {
  return static_cast<float>(*p);
}
#if defined(__CUDACC__)
RASS_LOAD_HD float load_float(const __half* p) { return __half2float(*p); }
RASS_LOAD_HD float load_float(const __nv_bfloat16* p) { return __bfloat162float(*p); }
#endif

}  // namespace rass::nn
