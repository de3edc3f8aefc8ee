#include "rass/train/scl_loss.hpp"

#include <map>
#include <set>
#include <tuple>

#include <torch/nn/functional/pooling.h>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/nn/attention_maps.hpp"

namespace rass::train {

namespace {
constexpr double kEps = 1e-8;  // keeps a constant map (max == min) and an all-zero A finite
// BCE sees A clamped to [kClamp, 1 - kClamp]: a min-max map is exactly 0 at
// its minimum and 1 - 1e-8/(max - min) at its maximum, where log(0) or
// log(~1e-6) make the BCE gradient ~1/(A(1-A)), and that gradient goes back
// through the normalisation as the difference of two terms ~1/(max - min)
// that cancel to float rounding: unclamped, the loss trains on rounding noise
// (two float32 implementations then disagree by percents). The clamp stops the
// gradient at those extreme cells and bounds a cell's BCE at -log(1e-4) = 9.2.
constexpr double kClamp = 1e-4;
}

torch::Tensor resize_mask(const torch::Tensor& mask, int64_t h, int64_t w) {
  torch::Tensor m = mask.to(torch::kFloat).unsqueeze(0).unsqueeze(0);
  if (m.size(2) != h || m.size(3) != w)
    m = torch::nn::functional::adaptive_avg_pool2d(m, torch::nn::functional::AdaptiveAvgPool2dFuncOptions({h, w}));
  return (m >= 0.5).to(torch::kFloat).squeeze(0).squeeze(0);
}

std::vector<std::string> select_scl_layers(const std::vector<std::string>& available,
                                           const std::vector<std::string>& patterns) {
  if (patterns.empty()) return available;
  std::vector<std::string> out;
  for (const std::string& a : available)
    for (const std::string& p : patterns)
      if (a.find(p) != std::string::npos) {
        out.push_back(a);
        break;
      }
  if (out.empty()) {
    std::string list;
    for (const std::string& p : patterns) list += (list.empty() ? "'" : ", '") + p + "'";
    throw_usage("scl_layers " + list + " match no cross-attention layer of the UNet (" +
                std::to_string(available.size()) + " attn2 layers, e.g. '" +
                (available.empty() ? std::string() : available.front()) + "')");
  }
  return out;
}

SclResult scl_loss(const std::vector<nn::CapturedAttention>& captured, const std::vector<std::vector<SclTarget>>& targets,
                   int64_t latent_h, int64_t latent_w, const std::vector<std::string>& layers) {
  const int64_t batch = int64_t(targets.size());
  const std::set<std::string> wanted(layers.begin(), layers.end());
  // Per sample: the sums of its maps' terms and their count.
  std::vector<torch::Tensor> region_sum(batch), pixel_sum(batch);
  std::vector<int64_t> count(batch, 0);
  // Masks resized once per (sample, term, level).
  std::map<std::tuple<int64_t, size_t, int64_t>, torch::Tensor> resized;
  SclResult r;
  for (const nn::CapturedAttention& cap : captured) {
    if (!wanted.empty() && !wanted.count(cap.path)) continue;
    const torch::Tensor& p = cap.probs;  // [batch*heads, q, keys]
    if (p.dim() != 3 || batch == 0 || p.size(0) % batch != 0)
      throw_runtime("SCL: attention " + cap.path + " does not have batch*heads rows for batch " + std::to_string(batch));
    const int64_t heads = p.size(0) / batch, q = p.size(1), keys = p.size(2);
    const auto [hh, ww] = nn::attention_map_size(latent_h, latent_w, q);
    if (hh == 0) throw_runtime("SCL: attention " + cap.path + " has " + std::to_string(q) + " queries: no UNet level has that size");
    const torch::Tensor mean = p.view({batch, heads, q, keys}).to(torch::kFloat).mean(1);  // [batch, q, keys]
    for (int64_t b = 0; b < batch; ++b)
      for (size_t t = 0; t < targets[b].size(); ++t) {
        const SclTarget& tg = targets[b][t];
        if (tg.positions.empty()) continue;
        for (int64_t pos : tg.positions)
          if (pos < 0 || pos >= keys)
            throw_runtime("SCL: token position " + std::to_string(pos) + " is outside the " + std::to_string(keys) + " keys");
        const torch::Tensor idx = torch::tensor(tg.positions, torch::kLong).to(p.device());
        torch::Tensor a = mean[b].index_select(1, idx).transpose(0, 1);  // [n, q]
        const torch::Tensor lo = std::get<0>(a.min(1, true)), hi = std::get<0>(a.max(1, true));
        const torch::Tensor A = (a - lo) / (hi - lo + kEps);
        auto key = std::make_tuple(b, t, hh * 100000 + ww);
        auto it = resized.find(key);
        if (it == resized.end())
          it = resized.emplace(key, resize_mask(tg.mask, hh, ww).reshape({1, hh * ww}).to(p.device())).first;
        const torch::Tensor M = it->second.expand_as(A);
        const torch::Tensor region = 1 - (A * M).sum(1) / (A.sum(1) + kEps);                             // [n]
        // F.binary_cross_entropy written out: the same values and gradient
        // on the clamped range (its log clamp at -100 and its 1e-12 in the
        // gradient never act there), but a NaN map (a run diverging, an
        // fp16 overflow) gives a NaN loss, which the loop reports as a
        // non-finite loss naming the step, or fp16 loss scaling skips;
        // LibTorch's kernel threw "all elements of input should be between
        // 0 and 1" with a stack trace instead.
        const torch::Tensor Ac = A.clamp(kClamp, 1 - kClamp);
        const torch::Tensor pixel = (-(M * Ac.log() + (1 - M) * (1 - Ac).log())).mean(1);  // [n]
        region_sum[b] = region_sum[b].defined() ? region_sum[b] + region.sum() : region.sum();
        pixel_sum[b] = pixel_sum[b].defined() ? pixel_sum[b] + pixel.sum() : pixel.sum();
        count[b] += a.size(0);
        r.maps += a.size(0);
      }
  }
  for (int64_t b = 0; b < batch; ++b) {
    if (count[b] == 0) continue;
    const torch::Tensor rb = region_sum[b] / double(count[b]), pb = pixel_sum[b] / double(count[b]);
    r.region = r.region.defined() ? r.region + rb : rb;
    r.pixel = r.pixel.defined() ? r.pixel + pb : pb;
  }
  if (!r.region.defined()) {
    r.region = torch::zeros({}, torch::kFloat);
    r.pixel = torch::zeros({}, torch::kFloat);
    return r;
  }
  r.region = r.region / double(batch);
  r.pixel = r.pixel / double(batch);
  return r;
}

}  // namespace rass::train
