#include "rass/train/point_sampling.hpp"

#include <stdexcept>
#include <string>

#include <torch/torch.h>

namespace rass::train {

torch::Tensor point_sample(const torch::Tensor& input, const torch::Tensor& coords) {
  if (input.dim() != 4 || coords.dim() != 3 || coords.size(2) != 2 || coords.size(0) != input.size(0))
    throw std::invalid_argument("point_sample: input [N,C,H,W] and coords [N,P,2] expected");
  // [N, P, 1, 2] grid -> [N, C, P, 1] -> [N, C, P].
  const torch::Tensor grid = (2.0 * coords - 1.0).unsqueeze(2).to(input.scalar_type());
  return torch::grid_sampler(input, grid, /*bilinear*/ 0, /*zeros*/ 0, /*align_corners*/ false).squeeze(3);
}

torch::Tensor calculate_uncertainty(const torch::Tensor& logits) {
  if (logits.dim() < 2 || logits.size(1) != 1)
    throw std::invalid_argument("calculate_uncertainty: logits [R, 1, ...] expected");
  return -logits.abs();
}

torch::Tensor uncertain_point_coords_with_randomness(const torch::Tensor& coarse_logits, int64_t num_points,
                                                     double oversample_ratio, double importance_sample_ratio,
                                                     const UniformPoints& uniform) {
  if (oversample_ratio < 1 || importance_sample_ratio < 0 || importance_sample_ratio > 1)
    throw std::invalid_argument("uncertain_point_coords_with_randomness: oversample_ratio >= 1 and "
                                "importance_sample_ratio in [0, 1] expected");
  torch::NoGradGuard no_grad;
  const torch::Tensor logits = coarse_logits.detach();
  const int64_t n = logits.size(0);
  // Python's int() of a positive float: truncation.
  const auto num_sampled = static_cast<int64_t>(double(num_points) * oversample_ratio);
  const auto num_uncertain = static_cast<int64_t>(importance_sample_ratio * double(num_points));
  const int64_t num_random = num_points - num_uncertain;
  if (n == 0) {
    // No masks: nothing to sample, but the draws are still made so a caller
    // replaying a reference's draws stays in step with it.
    uniform(0, num_sampled);
    if (num_random > 0) uniform(0, num_random);
    return torch::zeros({0, num_points, 2}, logits.options().dtype(torch::kFloat));
  }
  const torch::Tensor coords = uniform(n, num_sampled).to(logits.device(), torch::kFloat);
  // The uncertainty of the sampled (interpolated) logits, not interpolated
  // uncertainties: a point between logits -1 and 1 is maximally uncertain.
  const torch::Tensor unc = calculate_uncertainty(point_sample(logits, coords));  // [N, 1, S]
  const torch::Tensor idx = std::get<1>(unc.select(1, 0).topk(num_uncertain, 1));  // [N, U]
  torch::Tensor out = coords.gather(1, idx.unsqueeze(2).expand({n, num_uncertain, 2}));
  if (num_random > 0)
    out = torch::cat({out, uniform(n, num_random).to(logits.device(), torch::kFloat)}, 1);
  return out;
}

}  // namespace rass::train
