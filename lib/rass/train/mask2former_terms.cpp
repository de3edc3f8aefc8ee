#include "rass/train/mask2former_terms.hpp"

#include <torch/torch.h>

#include "rass/train/linear_assignment.hpp"
#include "rass/train/point_sampling.hpp"

namespace rass::train {

namespace F = torch::nn::functional;

torch::Tensor sigmoid_ce_loss(const torch::Tensor& logits, const torch::Tensor& labels, double num_masks) {
  const torch::Tensor l = torch::binary_cross_entropy_with_logits(logits, labels, {}, {}, at::Reduction::None);
  return l.mean(1).sum() / num_masks;
}

torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& labels, double num_masks) {
  const torch::Tensor s = logits.sigmoid().flatten(1);
  const torch::Tensor num = 2 * (s * labels).sum(-1);
  const torch::Tensor den = s.sum(-1) + labels.sum(-1);
  return (1 - (num + 1) / (den + 1)).sum() / num_masks;
}

torch::Tensor batch_sigmoid_ce_cost(const torch::Tensor& logits, const torch::Tensor& targets) {
  const int64_t hw = logits.size(1);
  const torch::Tensor pos =
      torch::binary_cross_entropy_with_logits(logits, torch::ones_like(logits), {}, {}, at::Reduction::None);
  const torch::Tensor neg =
      torch::binary_cross_entropy_with_logits(logits, torch::zeros_like(logits), {}, {}, at::Reduction::None);
  return (pos.mm(targets.t()) + neg.mm((1 - targets).t())) / double(hw);
}

torch::Tensor batch_dice_cost(const torch::Tensor& logits, const torch::Tensor& targets) {
  const torch::Tensor s = logits.sigmoid().flatten(1);
  const torch::Tensor num = 2 * s.mm(targets.t());
  const torch::Tensor den = s.sum(-1).unsqueeze(1) + targets.sum(-1).unsqueeze(0);
  return 1 - (num + 1) / (den + 1);
}

torch::Tensor class_loss(const torch::Tensor& logits, const std::vector<Matching>& matches,
                         const std::vector<SegTarget>& targets, double no_object_weight, double divisor) {
  const int64_t b = logits.size(0), q = logits.size(1), c = logits.size(2) - 1;
  std::vector<int64_t> cls(size_t(b * q), c);
  for (int64_t i = 0; i < b; ++i) {
    const torch::Tensor labels = targets[size_t(i)].labels.to(torch::kCPU, torch::kLong).contiguous();
    const int64_t* lp = labels.data_ptr<int64_t>();
    for (auto [query, tgt] : matches[size_t(i)]) cls[size_t(i * q + query)] = lp[tgt];
  }
  const torch::Tensor target = torch::tensor(cls, torch::kLong).view({b, q}).to(logits.device());
  torch::Tensor weight = torch::ones({c + 1}, logits.options().dtype(torch::kFloat));
  weight[c] = no_object_weight;
  // Per query w[target] * -log softmax(logits)[target].
  const torch::Tensor nll = F::cross_entropy(logits.transpose(1, 2), target,
                                             F::CrossEntropyFuncOptions().weight(weight).reduction(torch::kNone));
  if (divisor > 0) return nll.sum() / divisor;
  return nll.sum() / weight.index_select(0, target.flatten()).sum();
}

Matching match_image(const torch::Tensor& logits, const torch::Tensor& masks, const SegTarget& target,
                     const CriterionConfig& c, const torch::Tensor& coords, const std::string& what) {
  torch::NoGradGuard no_grad;
  const int64_t q = logits.size(0), k = target.labels.size(0), p = coords.size(1);
  if (k == 0) return {};
  const torch::Tensor prob = logits.softmax(-1);
  // 1 - prob approximates the NLL; the constant 1 does not change the matching.
  const torch::Tensor cost_class = -prob.index_select(1, target.labels.to(logits.device(), torch::kLong));
  const torch::Tensor tgt = point_sample(target.masks.unsqueeze(1).to(masks), coords.expand({k, p, 2})).squeeze(1);
  const torch::Tensor out = point_sample(masks.unsqueeze(1), coords.expand({q, p, 2})).squeeze(1);
  const torch::Tensor cost = c.mask_weight * batch_sigmoid_ce_cost(out, tgt) + c.class_weight * cost_class +
                             c.dice_weight * batch_dice_cost(out, tgt);
  const torch::Tensor cd = cost.to(torch::kCPU, torch::kDouble).contiguous();
  const double* d = cd.data_ptr<double>();
  return linear_sum_assignment(std::vector<double>(d, d + q * k), q, k, what);
}

}  // namespace rass::train
