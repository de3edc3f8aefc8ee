// Mask2Former's training criterion (facebookresearch/Mask2Former
// SetCriterion + HungarianMatcher, as RASS uses them unchanged; REFERENCE.md
// section 4): per image, Hungarian matching of the queries to the ground-truth
// masks on class cost + sigmoid-BCE + dice cost over uniformly sampled
// points; then class cross-entropy (no-object weight 0.1), mask BCE and dice
// on importance-sampled points (uncertainty = -|logit|), on the final
// prediction and on every auxiliary (deep supervision) prediction.
//
// Random points come from generators keyed by (seed, step, the image's
// global sample index, the prediction's layer), not from torch's global
// generator: stage.hpp's determinism contract.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "rass/nn/mask_former_head.hpp"

namespace rass::train {

struct CriterionConfig {
  double class_weight = 2.0, mask_weight = 5.0, dice_weight = 5.0;
  double no_object_weight = 0.1;
  int64_t num_points = 12544;  // TRAIN_NUM_POINTS (the matcher uses as many, uniform)
  double oversample_ratio = 3.0, importance_sample_ratio = 0.75;
  bool deep_supervision = true;
};

// One image's ground truth: the classes present and their binary masks (at the
// padded input resolution), as Mask2Former's semantic dataset mapper builds
// them from a label map.
struct SegTarget {
  torch::Tensor labels;  // [K] int64, class indices
  torch::Tensor masks;   // [K, H, W] float 0/1
};

// The targets of a label map [H, W] (int64; `ignore` marks unlabelled and
// padded pixels): one mask per class present, classes in increasing order.
SegTarget target_from_label_map(const torch::Tensor& labels, int64_t num_classes, int64_t ignore = 255);

struct CriterionResult {
  torch::Tensor loss;  // the weighted sum of every term (what is differentiated)
  // Every unweighted term by Mask2Former's names: loss_ce, loss_mask,
  // loss_dice, and loss_ce_<i>, ... for aux prediction i.
  std::vector<std::pair<std::string, torch::Tensor>> terms;
};

// `sample_keys[b]` identifies image b for the point generators (its global
// sample index); `num_masks` is the number of target masks over the whole
// global batch (all processes), clamped to at least 1 (Mask2Former divides
// mask and dice losses by it).
CriterionResult mask2former_loss(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                                 const CriterionConfig& c, uint64_t seed, int64_t step,
                                 const std::vector<int64_t>& sample_keys, double num_masks);

}  // namespace rass::train
