// CLIPIQA (Wang, Chan, Loy, AAAI 2023): no-reference quality as CLIP's
// preference for a positive over a negative prompt. OpenAI CLIP RN50 (MIT)
// scores the image at full resolution (normalised with CLIP's mean/std)
// against antonym prompt pairs; each pair's two cosine similarities, times
// exp(logit_scale) (100), go through a softmax, and the score is the
// positive prompt's probability, averaged over the pairs.
//
// Two conventions (metric names of rass-eval-iqa):
//   clipiqa        pyiqa's `clipiqa`, the numbers restoration papers report:
//                  five pairs ("Good image"/"bad image", "Sharp image"/
//                  "blurry image", "sharp edges"/"blurry edges", "High
//                  resolution image"/"low resolution image", "Noise-free
//                  image"/"noisy image"), no positional embedding in the
//                  attention pool (pyiqa's default pos_embedding=False).
//   clipiqa@paper  the paper's single pair "Good photo."/"Bad photo." with the
//                  attention pool's positional embedding resized to the
//                  image's grid (bicubic over the whole table, as pyiqa's
//                  pos_embedding=True does).
//
// Weights: clipiqa_rn50.safetensors and the tokenizer folder
// clipiqa_rn50_tokenizer/ (vocab.json, merges.txt), both written by
// scripts/convert_iqa_clipiqa.py from OpenAI's RN50.pt.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/metrics/deep_iqa.hpp"
#include "rass/nn/iqa_clip_resnet.hpp"

namespace rass::model {

struct ClipIqaPrompts {
  std::vector<std::string> pairs;  // positive, negative, positive, negative, ...
  nn::ClipPositional positional = nn::ClipPositional::none;
};
ClipIqaPrompts clipiqa_pyiqa_prompts();
ClipIqaPrompts clipiqa_paper_prompts();

// The loaded network with its prompts' text features precomputed; score()
// is const and thread-safe (no module state changes under InferenceMode).
class ClipIqa {
 public:
  // `weights`: the .safetensors file; `tokenizer_dir`: its vocab.json/merges.txt.
  ClipIqa(const std::string& weights, const std::string& tokenizer_dir, const ClipIqaPrompts& prompts,
          torch::Device device);
  ~ClipIqa();
  // images: [N,3,H,W] in [0,1] (any device) -> scores [N] (CPU, float).
  torch::Tensor score(const torch::Tensor& images) const;
  // The unnormalised image embedding [N, D] (for tests).
  torch::Tensor image_features(const torch::Tensor& images) const;
  // The prompts' token ids [P, context] as the text encoder sees them (for tests).
  const torch::Tensor& prompt_ids() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

// Registers `clipiqa` and `clipiqa@paper` with rass-eval-iqa.
void register_clipiqa_metric();

}  // namespace rass::model
