// Autocast off for the frozen parts of a stage's step (a teacher, an
// encoder, SAM), back on as it was when the scope ends: the loop's
// loop.amp (bf16 autocast on CUDA) is for the trained network's compute,
// while frozen parts run in loop.dtype (StageEnv::dtype) as loaded.
#pragma once
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <torch/version.h>

namespace rass::train {

class AutocastPause {
 public:
  AutocastPause() {
#if TORCH_VERSION_MAJOR >= 2
    was_ = at::autocast::is_autocast_enabled(at::kCUDA);
    if (was_) at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    was_ = at::autocast::is_enabled();
    if (was_) at::autocast::set_enabled(false);
#endif
  }
  ~AutocastPause() {
    if (!was_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_enabled(true);
#endif
  }
  AutocastPause(const AutocastPause&) = delete;
  AutocastPause& operator=(const AutocastPause&) = delete;

 private:
  bool was_ = false;
};

}  // namespace rass::train
