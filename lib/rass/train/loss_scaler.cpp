#include "rass/train/loss_scaler.hpp"

#include <cmath>

#include <torch/torch.h>

namespace rass::train {

LossScaler::LossScaler(bool enabled, double init_scale, int64_t growth_interval)
    : enabled_(enabled), scale_(float(init_scale)), growth_interval_(growth_interval) {}

void LossScaler::set_state(float scale, int64_t growth_tracker) {
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

torch::Tensor LossScaler::scale_loss(const torch::Tensor& loss) const {
  if (!enabled_) return loss;
  // As GradScaler's 0-dim fp32 _scale: the loss keeps its dtype (a scalar
  // needs no copy to the loss's device).
  return loss * double(scale_);
}

void LossScaler::unscale(const std::vector<torch::Tensor>& grads) const {
  if (!enabled_) return;
  torch::NoGradGuard ng;
  // GradScaler: inv_scale = self._scale.double().reciprocal().float().
  const float inv = float(1.0 / double(scale_));
  for (const auto& g : grads) g.mul_(inv);
}

void LossScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ = float(double(scale_) * 0.5);
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ == growth_interval_) {
    const float grown = float(double(scale_) * 2.0);
    if (std::isfinite(grown)) scale_ = grown;
    growth_tracker_ = 0;
  }
}

}  // namespace rass::train
