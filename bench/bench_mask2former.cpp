// rass-bench-m2f WEIGHTS.safetensors IO.safetensors [threads] [runs]: the
// Mask2Former head in the released configuration (defaults of
// MaskFormerHeadConfig) on the features and weights written by
// scripts/bench_mask2former_torch.py; prints seconds per forward (median of
// the runs after one warm-up) and the max abs difference to the reference's
// outputs. Not a test: scripts/bench-mask2former-head.sh runs both sides.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/nn/mask2former_decoder.hpp"
#include "rass/nn/mask_former_head.hpp"
#include "rass/nn/msdeform_pixel_decoder.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: rass-bench-m2f WEIGHTS.safetensors IO.safetensors [threads] [runs]\n");
    return 2;
  }
  const int threads = argc > 3 ? std::stoi(argv[3]) : 2;
  const int runs = argc > 4 ? std::stoi(argv[4]) : 3;
  torch::set_num_threads(threads);
  rass::nn::MaskFormerHead head{rass::nn::MaskFormerHeadConfig{}};
  auto weights = rass::SafeTensorsFile::open(argv[1]);
  rass::model::load_state_dict(*head, *weights);
  head->eval();
  auto io = rass::SafeTensorsFile::open(argv[2]);
  auto get = [&](const std::string& n) { return rass::model::to_tensor(*io->find(n), argv[2]); };
  const std::vector<torch::Tensor> feats = {get("feat.res2"), get("feat.res3"), get("feat.res4"), get("feat.res5")};
  c10::InferenceMode guard;
  std::vector<double> times;
  rass::nn::MaskFormerOutput out;
  for (int r = 0; r <= runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    out = head->forward(feats);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) times.push_back(s);  // the first is warm-up
  }
  std::sort(times.begin(), times.end());
  // One more run split into its two halves, to see where the time goes.
  const auto t0 = std::chrono::steady_clock::now();
  const rass::nn::PixelDecoderOutput px = head->pixel_decoder->forward_features(feats);
  const auto t1 = std::chrono::steady_clock::now();
  head->predictor->forward(px.multi_scale_features, px.mask_features);
  const auto t2 = std::chrono::steady_clock::now();
  const double err = std::max((out.pred_logits - get("pred_logits")).abs().max().item<double>(),
                              (out.pred_masks - get("pred_masks")).abs().max().item<double>());
  const double rel = (out.pred_masks - get("pred_masks")).abs().max().item<double>() /
                     get("pred_masks").abs().max().item<double>();
  std::printf("rass   %.3f s per forward (median of %d, %d threads); max abs diff to torch %.3g (%.2g of max |mask|)\n",
              times[times.size() / 2], runs, threads, err, rel);
  std::printf("rass   pixel decoder %.3f s, transformer decoder %.3f s\n",
              std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count());
  return 0;
}
