#include "rass/train/mask2former_criterion.hpp"

#include <algorithm>
#include <numeric>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/rng.hpp"
#include "rass/train/mask2former_terms.hpp"
#include "rass/train/point_sampling.hpp"

namespace rass::train {

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

// Where the uniform points come from: keyed generators, or the test hook.
class Draws {
 public:
  Draws(uint64_t seed, int64_t step, const std::vector<int64_t>& keys, const RandHook& hook)
      : seed_(seed), step_(step), keys_(keys), hook_(hook) {}

  int64_t key(size_t b) const { return keys_[b]; }
  // The matcher's points of image b: [1, points, 2].
  torch::Tensor match(size_t b, int64_t layer, int64_t points) const {
    return hook_ ? from_hook({1, points, 2}) : keyed(keys_[b], layer, "match", 1, points);
  }
  // Points for rows[b] masks of each image b, concatenated in image order.
  torch::Tensor batch(const std::vector<int64_t>& rows, int64_t layer, const char* purpose, int64_t points) const {
    const int64_t total = std::accumulate(rows.begin(), rows.end(), int64_t(0));
    if (hook_) return from_hook({total, points, 2});
    std::vector<torch::Tensor> parts;
    for (size_t b = 0; b < rows.size(); ++b) parts.push_back(keyed(keys_[b], layer, purpose, rows[b], points));
    return torch::cat(parts, 0);
  }

 private:
  // Row r of image `key`'s draw is the same whatever the row count, so a
  // mask's points depend only on (seed, step, key, layer, purpose, rank of
  // its query among the image's matched ones).
  torch::Tensor keyed(int64_t key, int64_t layer, const char* purpose, int64_t rows, int64_t points) const {
    const std::string stream = std::string("mask2former/") + purpose + "/step" + std::to_string(step_) + "/layer" +
                               std::to_string(layer);
    // mt19937 uses the low 32 bits of the seed; stream_seed's are well mixed.
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(seed_, std::to_string(key), stream));
    return torch::rand({rows, points, 2}, gen, torch::TensorOptions().dtype(torch::kFloat));
  }
  torch::Tensor from_hook(const std::vector<int64_t>& shape) const {
    torch::Tensor t = hook_(shape);
    if (t.sizes() != torch::IntArrayRef(shape))
      throw std::runtime_error("mask2former_loss: the rand hook returned " + shape_str(t) + " for a draw of " +
                               shape_str(torch::empty(shape)));
    return t.to(torch::kFloat);
  }

  uint64_t seed_;
  int64_t step_;
  const std::vector<int64_t>& keys_;
  const RandHook& hook_;
};

// The target masks' values at the points of their matched predictions:
// point_sample(target_masks[tgt_idx], coords) of the reference, [N, P]. Each
// value depends only on (mask, point), so rather than gathering N copies of
// the large target masks for every prediction, an image whose targets are all
// matched (whenever Q >= K) samples its masks in place with the coordinates
// reordered by target, and the rows are put back in query order.
torch::Tensor target_point_labels(const std::vector<torch::Tensor>& padded, const std::vector<Matching>& m,
                                  const torch::Tensor& coords) {
  torch::NoGradGuard no_grad;
  const torch::Device dev = coords.device();
  std::vector<torch::Tensor> parts;
  int64_t row = 0;
  for (size_t b = 0; b < m.size(); ++b) {
    const auto n = int64_t(m[b].size());
    if (n == 0) continue;
    const torch::Tensor cb = coords.slice(0, row, row + n);
    row += n;
    std::vector<int64_t> tidx, by_target(size_t(padded[b].size(0)), -1);
    for (int64_t k = 0; k < n; ++k) {
      tidx.push_back(m[b][size_t(k)].second);
      by_target[size_t(m[b][size_t(k)].second)] = k;
    }
    const torch::Tensor ti = torch::tensor(tidx, torch::kLong).to(dev);
    if (n == padded[b].size(0)) {
      const torch::Tensor perm = torch::tensor(by_target, torch::kLong).to(dev);
      const torch::Tensor by_tgt = point_sample(padded[b].unsqueeze(1), cb.index_select(0, perm)).squeeze(1);
      parts.push_back(by_tgt.index_select(0, ti));
    } else {
      parts.push_back(point_sample(padded[b].index_select(0, ti).unsqueeze(1), cb).squeeze(1));
    }
  }
  return torch::cat(parts, 0);
}

struct Normalisers {
  double num_masks;   // mask and dice divisor
  double ce_divisor;  // <= 0: the call's own weight sum (Mask2Former's mean)
};

void check_inputs(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                  const std::vector<int64_t>& keys) {
  const torch::Tensor& lg = out.pred_logits;
  const torch::Tensor& mk = out.pred_masks;
  if (!lg.defined() || !mk.defined() || lg.dim() != 3 || mk.dim() != 4 || lg.size(0) != mk.size(0) ||
      lg.size(1) != mk.size(1) || lg.size(2) < 2)
    throw Error(ExitCode::bad_input, "mask2former_loss: predictions must be logits [B, Q, C+1] and masks "
                                     "[B, Q, H, W] with the same B and Q");
  for (size_t i = 0; i < out.aux.size(); ++i)
    if (out.aux[i].first.sizes() != lg.sizes() || out.aux[i].second.sizes() != mk.sizes())
      throw Error(ExitCode::bad_input, "mask2former_loss: aux prediction " + std::to_string(i) +
                                           " differs in shape from the final one");
  const size_t b = size_t(lg.size(0));
  if (targets.size() != b || keys.size() != b)
    throw Error(ExitCode::bad_input, "mask2former_loss: " + std::to_string(b) + " images but " +
                                         std::to_string(targets.size()) + " targets and " +
                                         std::to_string(keys.size()) + " sample keys");
  const int64_t classes = lg.size(2) - 1;
  for (size_t i = 0; i < b; ++i) {
    const SegTarget& t = targets[i];
    const std::string where = "mask2former_loss: target " + std::to_string(i) + ": ";
    if (!t.labels.defined() || !t.masks.defined() || t.labels.dim() != 1 || t.masks.dim() != 3 ||
        t.masks.size(0) != t.labels.size(0))
      throw Error(ExitCode::bad_input, where + "labels [K] and masks [K, H, W] expected, got " +
                                           shape_str(t.labels) + " and " + shape_str(t.masks));
    if (t.labels.numel() &&
        (t.labels.min().item<int64_t>() < 0 || t.labels.max().item<int64_t>() >= classes))
      throw Error(ExitCode::bad_input, where + "a label is outside 0.." + std::to_string(classes - 1) +
                                           " (the predictions have " + std::to_string(classes) + " classes)");
  }
}

CriterionResult run(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                    const CriterionConfig& c, const Draws& draws, const Normalisers& norm) {
  const torch::Device dev = out.pred_logits.device();
  const size_t nb = targets.size();
  const int64_t num_layers = int64_t(out.aux.size()) + 1;

  // Targets on the predictions' device, fp32; for the loss, padded with zeros
  // to the batch's largest size (nested_tensor_from_tensor_list), as the
  // reference samples the padded batch at normalised coordinates.
  std::vector<SegTarget> tg(nb);
  int64_t hmax = 0, wmax = 0;
  for (size_t b = 0; b < nb; ++b) {
    tg[b].labels = targets[b].labels.to(dev, torch::kLong);
    tg[b].masks = targets[b].masks.to(dev, torch::kFloat);
    hmax = std::max(hmax, tg[b].masks.size(1));
    wmax = std::max(wmax, tg[b].masks.size(2));
  }
  std::vector<torch::Tensor> padded(nb);
  for (size_t b = 0; b < nb; ++b) {
    const torch::Tensor& m = tg[b].masks;
    padded[b] = (m.size(1) == hmax && m.size(2) == wmax)
                    ? m
                    : torch::constant_pad_nd(m, {0, wmax - m.size(2), 0, hmax - m.size(1)}, 0);
  }

  // The final prediction first, then aux 0, 1, ...: Mask2Former's order.
  struct Pred {
    torch::Tensor logits, masks;
    int64_t layer;
    std::string suffix;
  };
  std::vector<Pred> preds{{out.pred_logits, out.pred_masks, num_layers - 1, ""}};
  if (c.deep_supervision)
    for (size_t i = 0; i < out.aux.size(); ++i)
      preds.push_back({out.aux[i].first, out.aux[i].second, int64_t(i), "_" + std::to_string(i)});

  CriterionResult res;
  torch::Tensor total;
  for (const Pred& p : preds) {
    const torch::Tensor logits = p.logits.to(torch::kFloat);
    const torch::Tensor masks = p.masks.to(torch::kFloat);

    std::vector<Matching> m(nb);
    for (size_t b = 0; b < nb; ++b) {
      const torch::Tensor coords = draws.match(b, p.layer, c.num_points).to(dev);
      m[b] = match_image(logits[int64_t(b)].detach(), masks[int64_t(b)].detach(), tg[b], c, coords,
                         "mask2former matcher (layer " + std::to_string(p.layer) + ", image " +
                             std::to_string(b) + ", sample " + std::to_string(draws.key(b)) + ")");
    }

    const torch::Tensor ce = class_loss(logits, m, tg, c.no_object_weight, norm.ce_divisor);

    // The matched pairs of the whole batch, image by image in query order.
    std::vector<int64_t> bidx, qidx, rows(nb, 0);
    for (size_t b = 0; b < nb; ++b) {
      for (auto [q, t] : m[b]) {
        bidx.push_back(int64_t(b));
        qidx.push_back(q);
      }
      rows[b] = int64_t(m[b].size());
    }
    int draw = 0;
    const char* purposes[2] = {"oversample", "random"};
    const UniformPoints uniform = [&](int64_t n, int64_t points) {
      if (n != int64_t(bidx.size())) throw std::logic_error("mask2former_loss: point draw for the wrong mask count");
      return draws.batch(rows, p.layer, purposes[std::min(draw++, 1)], points);
    };
    torch::Tensor loss_mask, loss_dice;
    if (bidx.empty()) {
      // No target anywhere: the reference's sums over zero masks, 0 (with a
      // zero gradient); the draws are still made.
      uncertain_point_coords_with_randomness(masks.new_zeros({0, 1, 1, 1}), c.num_points, c.oversample_ratio,
                                             c.importance_sample_ratio, uniform);
      loss_mask = masks.sum() * 0;
      loss_dice = masks.sum() * 0;
    } else {
      const torch::Tensor src =
          masks.index({torch::tensor(bidx, torch::kLong).to(dev), torch::tensor(qidx, torch::kLong).to(dev)})
              .unsqueeze(1);                                    // [N, 1, h, w]
      const torch::Tensor coords = uncertain_point_coords_with_randomness(
          src, c.num_points, c.oversample_ratio, c.importance_sample_ratio, uniform);
      const torch::Tensor labels = target_point_labels(padded, m, coords);
      const torch::Tensor point_logits = point_sample(src, coords).squeeze(1);
      loss_mask = sigmoid_ce_loss(point_logits, labels, norm.num_masks);
      loss_dice = dice_loss(point_logits, labels, norm.num_masks);
    }

    res.terms.emplace_back("loss_ce" + p.suffix, ce);
    res.terms.emplace_back("loss_mask" + p.suffix, loss_mask);
    res.terms.emplace_back("loss_dice" + p.suffix, loss_dice);
    res.matches.push_back(std::move(m));
    // MaskFormer's weight_dict gives every aux term its final term's weight.
    const torch::Tensor weighted = c.class_weight * ce + c.mask_weight * loss_mask + c.dice_weight * loss_dice;
    total = total.defined() ? total + weighted : weighted;
  }
  res.loss = total;
  return res;
}

}  // namespace

SegTarget target_from_label_map(const torch::Tensor& labels, int64_t num_classes, int64_t ignore,
                                const std::string& source) {
  if (labels.dim() != 2 || !(at::isIntegralType(labels.scalar_type(), /*includeBool*/ false)))
    throw_bad_input(source, "a label map must be an integer [H, W] tensor, got " + shape_str(labels));
  const torch::Tensor l = labels.to(torch::kLong);
  const torch::Tensor labelled = l != ignore;
  const torch::Tensor bad = labelled & ((l < 0) | (l >= num_classes));
  if (bad.any().item<bool>()) {
    const torch::Tensor at = bad.nonzero()[0].cpu();
    const int64_t y = at[0].item<int64_t>(), x = at[1].item<int64_t>();
    throw_bad_input(source, "value " + std::to_string(l[y][x].item<int64_t>()) + " at (" + std::to_string(y) +
                                ", " + std::to_string(x) + ") is not a class (0.." +
                                std::to_string(num_classes - 1) + ") nor the ignore label " +
                                std::to_string(ignore));
  }
  const torch::Tensor present = torch::bincount(l.masked_select(labelled), {}, num_classes) > 0;
  SegTarget t;
  t.labels = present.nonzero().flatten().to(torch::kLong);
  t.masks = (l.unsqueeze(0) == t.labels.view({-1, 1, 1})).to(torch::kFloat);
  return t;
}

CriterionResult mask2former_loss(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                                 const CriterionConfig& c, uint64_t seed, int64_t step,
                                 const std::vector<int64_t>& sample_keys, double num_masks) {
  check_inputs(out, targets, sample_keys);
  if (!(num_masks > 0)) throw std::invalid_argument("mask2former_loss: num_masks must be > 0 (clamp it at 1)");
  const RandHook none;
  return run(out, targets, c, Draws(seed, step, sample_keys, none), {num_masks, 0});
}

CriterionResult mask2former_loss(const nn::MaskFormerOutput& out, const std::vector<SegTarget>& targets,
                                 const CriterionConfig& c, const CriterionContext& ctx) {
  check_inputs(out, targets, ctx.sample_keys);
  if (ctx.world < 1) throw std::invalid_argument("mask2former_loss: world must be >= 1");
  const auto sum = [&](double x) { return ctx.allreduce_sum ? ctx.allreduce_sum(x) : x; };
  const int64_t q = out.pred_logits.size(1);
  double masks = 0, weights = 0;
  for (const SegTarget& t : targets) {
    const int64_t k = t.labels.size(0);
    masks += double(k);
    // Every layer matches min(Q, K) queries of the image (weight 1); the
    // others are "no object".
    weights += double(std::min(q, k)) + c.no_object_weight * double(q - std::min(q, k));
  }
  const double w = double(ctx.world);
  const Normalisers norm{std::max(sum(masks), 1.0) / w, sum(weights) / w};
  return run(out, targets, c, Draws(ctx.seed, ctx.step, ctx.sample_keys, ctx.rand_hook), norm);
}

}  // namespace rass::train
