// CUDA autocast scopes: the training loop's loop.amp (bf16 autocast for the
// trained network's compute), the stages' pauses for their frozen parts (a
// teacher, an encoder, SAM), which run in loop.dtype (StageEnv::dtype) as
// loaded, and rass-dreamclear's DiT (fp32 weights under fp16/bf16 autocast,
// as the reference's accelerator runs it). One place for the LibTorch 1.13 /
// 2.x calls.
#pragma once
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <torch/version.h>

namespace rass::nn {

inline bool cuda_autocast_enabled() {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

inline c10::ScalarType current_cuda_autocast_dtype() {
#if TORCH_VERSION_MAJOR >= 2
  return at::autocast::get_autocast_dtype(at::kCUDA);
#else
  return at::autocast::get_autocast_gpu_dtype();
#endif
}

inline void set_cuda_autocast(bool on) {
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_enabled(at::kCUDA, on);
#else
  at::autocast::set_enabled(on);
#endif
}

// Sets CUDA autocast on or off, and its dtype.
inline void set_cuda_autocast_state(bool on, c10::ScalarType dtype) {
  set_cuda_autocast(on);
#if TORCH_VERSION_MAJOR >= 2
  at::autocast::set_autocast_dtype(at::kCUDA, dtype);
#else
  at::autocast::set_autocast_gpu_dtype(dtype);
#endif
}

// Autocast to `dtype` (bf16 or fp16) on CUDA for the forward pass, off
// again when the scope ends, also by an exception (LibTorch 1.13 has no CPU
// autocast dtype control).
class AutocastScope {
 public:
  explicit AutocastScope(bool on, c10::ScalarType dtype = c10::kBFloat16) : on_(on) {
    if (!on_) return;
    // No cast copies from before the scope (of weights updated since).
    at::autocast::clear_cache();
    set_cuda_autocast_state(true, dtype);
  }
  ~AutocastScope() {
    if (!on_) return;
    set_cuda_autocast(false);
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool on_;
};

// Autocast off for a frozen part, back on as it was when the scope ends.
class AutocastPause {
 public:
  AutocastPause() : was_(cuda_autocast_enabled()) {
    if (was_) set_cuda_autocast(false);
  }
  ~AutocastPause() {
    if (was_) set_cuda_autocast(true);
  }
  AutocastPause(const AutocastPause&) = delete;
  AutocastPause& operator=(const AutocastPause&) = delete;

 private:
  bool was_ = false;
};

}  // namespace rass::nn
