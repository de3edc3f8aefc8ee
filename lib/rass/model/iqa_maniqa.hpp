// MANIQA as rass-eval-iqa's metrics: the network (nn/iqa_maniqa.hpp) and the
// two test-time protocols in use.
//
//   maniqa, maniqa-kadid, maniqa-pipal   pyiqa's (the numbers papers report):
//       image in [0,1], normalised (x - 0.5) / 0.5; when its short side is
//       at most the crop size S (224), resized bilinearly (align_corners
//       false) by the factor (S + 1) / short side, output size floor(side *
//       factor); 20 crops on a uniform grid: steps (H - S) // 4 and
//       (W - S) // 4, the first 20 positions of the 5x5 grid in row-major
//       order; the score is sum(score * weight) / (sum(weight) + 1e-8) over
//       the patches of all 20 crops together. Deterministic.
//       Weights: KonIQ-10k (maniqa_koniq.safetensors), KADID-10k
//       (maniqa_kadid.safetensors), PIPAL (maniqa_pipal.safetensors).
//   maniqa@official                      predict_one_image.py of the official
//       code, KonIQ weights: 20 crops S x S at random positions (top and left
//       uniform in [0, H - S) and [0, W - S), drawn per crop top first), each
//       scored sum(score * weight) / sum(weight), averaged. The official code
//       draws from numpy's global generator (seed 20), which cannot be
//       reproduced per image; here the positions come from rass's keyed
//       generator (item key, --seed), the same distribution, so scores are
//       reproducible but equal the reference's only in distribution. An
//       image with a side of exactly S uses offset 0 there (the reference
//       fails on it); smaller images are refused (the official protocol
//       never resizes).
#pragma once
#include <memory>
#include <string>

#include <torch/types.h>

#include "rass/metrics/deep_iqa.hpp"
#include "rass/nn/iqa_maniqa.hpp"

namespace rass::model {

// Builds the network from a converted file (scripts/convert_iqa_maniqa.py):
// the configuration from the tensor shapes and the metadata (scale, vit_heads).
nn::Maniqa load_maniqa(const std::string& weights, torch::Device device);

// pyiqa's protocol: images [N,3,H,W] in [0,1] -> scores [N] (CPU).
torch::Tensor maniqa_score_pyiqa(nn::ManiqaImpl& net, const torch::Tensor& images, int crops = 20);
// The 20 crop positions (top, left) of the official protocol for one item.
std::vector<std::pair<int64_t, int64_t>> maniqa_official_crops(int64_t h, int64_t w, int64_t size, uint64_t seed,
                                                               const std::string& key, int crops = 20);
// The official protocol for one image [1,3,H,W] in [0,1] at the given positions -> score.
double maniqa_score_official(nn::ManiqaImpl& net, const torch::Tensor& image,
                             const std::vector<std::pair<int64_t, int64_t>>& crops);

// Registers maniqa, maniqa-kadid, maniqa-pipal and maniqa@official.
void register_maniqa_metric();

}  // namespace rass::model
