// Dynamic loss scaling for fp16 mixed precision (loop.amp with
// loop.amp_dtype fp16), as torch.cuda.amp.GradScaler computes it: the
// trainers the stages follow run fp16 autocast with it (ResShift's, SinSR's
// and SAMSR's `use_amp`, detectron2's AMPTrainer under Mask2Former,
// accelerate's fp16 under OSEDiff). Small fp16 gradients underflow to zero;
// the loss is multiplied by a scale before backward, the gradients divided
// by it after, and a step whose gradients are not finite is skipped with the
// scale halved; after `growth_interval` finite steps in a row it doubles.
// bf16 needs none of this (fp32's exponent range).
#pragma once
#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace rass::train {

class LossScaler {
 public:
  // GradScaler's defaults: init_scale 2^16, growth 2, backoff 0.5, interval 2000.
  LossScaler(bool enabled, double init_scale = 65536.0, int64_t growth_interval = 2000);

  bool enabled() const { return enabled_; }
  // The scale (fp32, as GradScaler keeps it) and the count of finite steps
  // since it last changed: a checkpoint's state.
  float scale() const { return scale_; }
  int64_t growth_tracker() const { return growth_tracker_; }
  void set_state(float scale, int64_t growth_tracker);

  // loss * scale (GradScaler.scale); the loss itself when disabled.
  torch::Tensor scale_loss(const torch::Tensor& loss) const;
  // Every gradient times float(1 / double(scale)) in place (GradScaler's
  // unscale_; the caller tells non-finite gradients by their norm).
  void unscale(const std::vector<torch::Tensor>& grads) const;
  // After the step (GradScaler.update, torch's _amp_update_scale_): a
  // non-finite step halves the scale and restarts the count; a finite one
  // counts, and the growth_interval-th in a row doubles the scale (kept
  // as it is if doubling would overflow fp32).
  void update(bool found_inf);

 private:
  bool enabled_;
  float scale_;
  int64_t growth_interval_;
  int64_t growth_tracker_ = 0;
};

}  // namespace rass::train
