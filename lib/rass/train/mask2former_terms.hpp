// The formulas of Mask2Former's criterion (modeling/criterion.py) and matcher
// (modeling/matcher.py), one function each: what mask2former_loss combines,
// exposed for the hand-computed tests.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/train/mask2former_criterion.hpp"

namespace rass::train {

// sigmoid_ce_loss: BCE-with-logits of point logits [N, P] against point
// labels [N, P], mean over points, summed over masks, / num_masks.
torch::Tensor sigmoid_ce_loss(const torch::Tensor& logits, const torch::Tensor& labels, double num_masks);
// dice_loss: 1 - (2 sum(s*t) + 1) / (sum(s) + sum(t) + 1) per mask with
// s = sigmoid(logits), summed over masks, / num_masks.
torch::Tensor dice_loss(const torch::Tensor& logits, const torch::Tensor& labels, double num_masks);

// The matcher's pairwise costs of Q predicted masks [Q, P] (logits) and K
// target masks [K, P] at the same points -> [Q, K]: batch_sigmoid_ce_loss
// (mean BCE over points) and batch_dice_loss.
torch::Tensor batch_sigmoid_ce_cost(const torch::Tensor& logits, const torch::Tensor& targets);
torch::Tensor batch_dice_cost(const torch::Tensor& logits, const torch::Tensor& targets);

// loss_labels: cross-entropy of logits [B, Q, C + 1] against the matched
// target class of each query (C, "no object", for unmatched queries), class
// weights 1 and no_object_weight for class C; the weighted sum divided by
// `divisor`, or by the sum of the queries' weights when divisor <= 0
// (F.cross_entropy's weighted mean, Mask2Former's).
torch::Tensor class_loss(const torch::Tensor& logits, const std::vector<Matching>& matches,
                         const std::vector<SegTarget>& targets, double no_object_weight, double divisor = 0);

// HungarianMatcher.memory_efficient_forward for one image: logits [Q, C + 1],
// masks [Q, h, w] (fp32), the image's targets (masks [K, H, W] on the same
// device), coords [1, P, 2] the points shared by every mask. Cost
// mask_weight * BCE + class_weight * (-softmax prob of the target class) +
// dice_weight * dice, solved by linear_sum_assignment (`what` names the image
// in its non-finite-cost error). No gradient.
Matching match_image(const torch::Tensor& logits, const torch::Tensor& masks, const SegTarget& target,
                     const CriterionConfig& c, const torch::Tensor& coords, const std::string& what);

}  // namespace rass::train
