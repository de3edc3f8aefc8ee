// Mask2Former's training criterion (facebookresearch/Mask2Former
// SetCriterion + HungarianMatcher, as RASS uses them unchanged; REFERENCE.md
// section 4): per image, Hungarian matching of the queries to the ground-truth
// masks on class cost + sigmoid-BCE + dice cost over uniformly sampled
// points; then class cross-entropy (no-object weight 0.1), mask BCE and dice
// on importance-sampled points (uncertainty = -|logit|), on the final
// prediction and on every auxiliary (deep supervision) prediction.
//
// Random points come from generators keyed by (seed, step, the image's
// global sample index, the prediction's layer, the draw's purpose), not from
// torch's global generator: stage.hpp's determinism contract. Each is a CPU
// torch::Generator (mt19937) seeded with rass::stream_seed(seed, key,
// "mask2former/<purpose>/step<s>/layer<l>"); points are drawn on the CPU and
// moved to the predictions' device, so CPU and CUDA runs sample the same
// points. Layer l is the prediction's index in the decoder: aux i is layer i,
// the final prediction layer out.aux.size(). Purposes: "match" (the matcher's
// uniform points), "oversample" and "random" (the loss's importance sampling).
//
// The criterion runs in fp32 (predictions are cast; Mask2Former runs it under
// autocast, whose grid_sample, BCE and softmax run in fp32 too).
#pragma once
#include <cstdint>
#include <functional>
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
// A value that is neither a class nor `ignore` throws rass::Error(bad_input)
// "<source>: value v at (y, x) is not a class (0..num_classes-1) nor the
// ignore label".
SegTarget target_from_label_map(const torch::Tensor& labels, int64_t num_classes, int64_t ignore = 255,
                                const std::string& source = "label map");

// One image's matching: (query, target) pairs sorted by query.
using Matching = std::vector<std::pair<int64_t, int64_t>>;

struct CriterionResult {
  torch::Tensor loss;  // the weighted sum of every term (what is differentiated)
  // Every unweighted term by Mask2Former's names: loss_ce, loss_mask,
  // loss_dice, and loss_ce_<i>, ... for aux prediction i.
  std::vector<std::pair<std::string, torch::Tensor>> terms;
  // The matchings: matches[0] of the final prediction, matches[1 + i] of aux
  // prediction i; each has one Matching per image.
  std::vector<std::vector<Matching>> matches;
};

// A test hook: when set, every uniform draw is taken from it instead of the
// keyed generators, in Mask2Former's call order -- for the final prediction
// then for each aux prediction in order: the matcher's torch.rand(1, P, 2) for
// each image in batch order, then the loss's torch.rand(N, S, 2) (oversampled
// points of the N matched masks of the whole batch, in image then query
// order) and torch.rand(N, P - U, 2) (its random points); draws of zero rows
// included. It receives the shape and returns a float tensor of that shape.
// The parity test (tests/train/test_mask2former_criterion.cpp) replays the
// draws make_criterion_fixture.py recorded from the reference.
using RandHook = std::function<torch::Tensor(const std::vector<int64_t>& shape)>;

// Everything that identifies and normalises one process's part of a step.
struct CriterionContext {
  uint64_t seed = 0;
  int64_t step = 0;
  std::vector<int64_t> sample_keys;  // global sample index of each image
  // Data parallelism: the loss of each process is normalised so that the
  // mean of the processes' gradients (what the loop applies) equals the
  // gradient of one process with the combined batch: mask and dice terms
  // are divided by max(global target count, 1) / world, the class term's
  // weighted sum by (global weight sum) / world. With world 1 both are
  // exactly Mask2Former's normalisers. allreduce_sum sums a value over the
  // processes (empty: one process).
  int world = 1;
  std::function<double(double)> allreduce_sum;
  RandHook rand_hook;  // tests only; empty in training
};

// As below, with every normaliser computed from ctx (two allreduce_sum calls).
CriterionResult mask2former_loss(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                                 const CriterionConfig& c, const CriterionContext& ctx);

// `sample_keys[b]` identifies image b for the point generators (its global
// sample index); mask and dice losses are divided by `num_masks` as given,
// the class loss is Mask2Former's weighted mean over this call's queries.
// That is Mask2Former's loss for one process when num_masks is the batch's
// target count clamped to at least 1; for several processes use the
// CriterionContext overload, which makes N processes equal one.
CriterionResult mask2former_loss(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                                 const CriterionConfig& c, uint64_t seed, int64_t step,
                                 const std::vector<int64_t>& sample_keys, double num_masks);

}  // namespace rass::train
