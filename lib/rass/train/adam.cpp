#include "rass/train/adam.hpp"

#include <cmath>

#include <torch/torch.h>

namespace rass::train {

void adam_update(torch::Tensor& p, torch::Tensor& exp_avg, torch::Tensor& exp_avg_sq, int64_t step,
                 const torch::Tensor& grad, const AdamSettings& s) {
  torch::NoGradGuard ng;
  torch::Tensor g = grad;
  if (s.decoupled) p.mul_(1 - s.lr * s.weight_decay);
  else if (s.weight_decay != 0) g = grad.add(p, s.weight_decay);
  exp_avg.mul_(s.beta1).add_(g, 1 - s.beta1);
  exp_avg_sq.mul_(s.beta2).addcmul_(g, g, 1 - s.beta2);
  const double bc1 = 1 - std::pow(s.beta1, double(step));
  const double bc2 = 1 - std::pow(s.beta2, double(step));
  const torch::Tensor denom = (exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(s.eps);
  p.addcdiv_(exp_avg, denom, -s.lr / bc1);
}

}  // namespace rass::train
