// The optimizer update of rass-train's loop, as PyTorch computes it, apart
// from the loop so tests can hold it against torch.optim.
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace rass::train {

struct AdamSettings {
  double lr = 1e-3, weight_decay = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  // true: torch.optim.AdamW (p *= 1 - lr wd before the step); false:
  // torch.optim.Adam (wd p added to the gradient: L2 regularisation, which
  // then passes through the moments).
  bool decoupled = true;
};

// One single-tensor step (maximize=False, amsgrad=False) of `p` in place,
// with its moments `exp_avg` and `exp_avg_sq` (updated in place); `step` is
// the step count after this one (1 for the first).
void adam_update(torch::Tensor& p, torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq, int64_t step,
                 const torch::Tensor& grad, const AdamSettings& s);

}  // namespace rass::train
