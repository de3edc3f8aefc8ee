#include "rass/model/lora_surgery.hpp"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/nn/lora.hpp"

namespace rass::model {

LoraTargetGroups osediff_targets(torch::nn::Module& unet, bool with_conv_out) {
  // OSEDiff's l_grep. Its loop tries the patterns in order and stops at the
  // first that is a substring; the group depends only on the name.
  static const char* kPatterns[] = {"to_k", "to_q", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in",
                                    "conv_shortcut", "conv_out", "proj_out", "proj_in", "ff.net.2", "ff.net.0.proj"};
  auto has = [](const std::string& s, const char* part) { return s.find(part) != std::string::npos; };
  LoraTargetGroups g;
  for (const auto& [path, layer] : nn::lora_layers(unet)) {
    (void)layer;
    const std::string param = path + ".weight";  // the reference greps parameter names
    if (has(param, "bias") || has(param, "norm")) continue;
    if (!std::any_of(std::begin(kPatterns), std::end(kPatterns), [&](const char* p) { return has(param, p); })) continue;
    // RASS removes the exact name "conv_out" from its lists (not other names containing it).
    if (!with_conv_out && path == "conv_out") continue;
    if (has(param, "down_blocks") || has(param, "conv_in")) g.encoder.push_back(path);
    else if (has(param, "up_blocks") || has(param, "conv_out")) g.decoder.push_back(path);
    else g.others.push_back(path);
  }
  return g;
}

LowRankFactors low_rank_factors(const torch::Tensor& delta, int64_t rank) {
  if (rank < 1) throw Error(ExitCode::usage, "LoRA rank must be >= 1");
  if (delta.dim() != 2 && delta.dim() != 4)
    throw Error(ExitCode::bad_input, "a LoRA factorisation needs a Linear [out, in] or Conv2d [out, in, kh, kw] weight");
  const int64_t out = delta.size(0);
  // float64 SVD: the energy ratio and the reconstruction are then exact to
  // float32 rounding even for small singular values.
  const torch::Tensor m = delta.reshape({out, -1}).to(torch::kDouble);
  const int64_t in = m.size(1);
  LowRankFactors f;
  // at::linalg_svd: LibTorch 2.11 no longer has the torch::linalg C++ namespace.
  auto [U, S, Vh] = at::linalg_svd(m, /*full_matrices=*/false);
  const int64_t k = std::min<int64_t>(rank, S.size(0));
  f.effective_rank = k;
  const double total = S.pow(2).sum().item<double>();
  f.energy_total = total;
  f.energy_kept = total > 0 ? S.slice(0, 0, k).pow(2).sum().item<double>() / total : 1.0;
  const torch::Tensor root = S.slice(0, 0, k).sqrt();
  torch::Tensor A = torch::zeros({rank, in}, m.options()), B = torch::zeros({out, rank}, m.options());
  A.slice(0, 0, k).copy_(root.unsqueeze(1) * Vh.slice(0, 0, k));
  B.slice(1, 0, k).copy_(U.slice(1, 0, k) * root.unsqueeze(0));
  if (delta.dim() == 4) {
    A = A.view({rank, delta.size(1), delta.size(2), delta.size(3)});
    B = B.view({out, rank, 1, 1});
  }
  f.A = A.to(torch::kFloat).contiguous();
  f.B = B.to(torch::kFloat).contiguous();
  return f;
}

torch::Tensor repeat_input_channels(const torch::Tensor& w, int64_t n) {
  if (w.dim() != 4) throw Error(ExitCode::bad_input, "conv_in weight must be [out, in, kh, kw]");
  return w.repeat({1, n, 1, 1});
}

torch::Tensor repeat_output_channels(const torch::Tensor& w, int64_t n) {
  std::vector<int64_t> reps(size_t(w.dim()), 1);
  reps[0] = n;
  return w.repeat(reps);
}

void save_named_adapters(torch::nn::Module& root, const std::vector<std::string>& names, const std::string& path,
                         const std::map<std::string, std::string>& metadata) {
  std::vector<torch::Tensor> keep;
  std::vector<TensorToWrite> out;
  for (const auto& p : root.named_parameters(true)) {
    std::string adapter;
    if (!nn::is_lora_parameter(p.key(), &adapter) || std::find(names.begin(), names.end(), adapter) == names.end())
      continue;
    keep.push_back(p.value().detach().to(torch::kCPU, torch::kFloat).contiguous());
    const torch::Tensor& t = keep.back();
    out.push_back({p.key(), DType::f32, t.sizes().vec(), t.data_ptr(), size_t(t.nbytes())});
  }
  if (out.empty()) throw Error(ExitCode::usage, "no layer carries the adapters to save");
  write_safetensors(path, out, metadata);
}

}  // namespace rass::model
