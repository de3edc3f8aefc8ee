#include "rass/nn/position_encoding.hpp"

#include <cmath>

#include <torch/torch.h>

namespace rass::nn {

torch::Tensor position_embedding_sine(const torch::Tensor& x, int64_t num_pos_feats, double temperature) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32).device(x.device());
  // The reference's cumsum over an all-true mask, in float32: 1..H and 1..W.
  const torch::Tensor ones = torch::ones({B, H, W}, f32);
  torch::Tensor y_embed = ones.cumsum(1), x_embed = ones.cumsum(2);
  constexpr double eps = 1e-6, scale = 2 * M_PI;
  using torch::indexing::Slice;
  y_embed = y_embed / (y_embed.index({Slice(), Slice(-1, torch::indexing::None), Slice()}) + eps) * scale;
  x_embed = x_embed / (x_embed.index({Slice(), Slice(), Slice(-1, torch::indexing::None)}) + eps) * scale;
  torch::Tensor dim_t = torch::arange(num_pos_feats, f32);
  dim_t = torch::pow(temperature, 2 * torch::div(dim_t, 2, "floor") / static_cast<double>(num_pos_feats));
  auto interleave = [&](const torch::Tensor& e) {
    const torch::Tensor p = e.unsqueeze(-1) / dim_t;
    return torch::stack({p.index({"...", Slice(0, torch::indexing::None, 2)}).sin(),
                         p.index({"...", Slice(1, torch::indexing::None, 2)}).cos()},
                        4)
        .flatten(3);
  };
  return torch::cat({interleave(y_embed), interleave(x_embed)}, 3).permute({0, 3, 1, 2}).to(x.scalar_type());
}

}  // namespace rass::nn
