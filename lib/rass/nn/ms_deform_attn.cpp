#include "rass/nn/ms_deform_attn.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

#include <torch/nn/init.h>
#include <torch/torch.h>

namespace rass::nn {

torch::Tensor ms_deform_attn_core(const torch::Tensor& value, const SpatialShapes& shapes,
                                  const torch::Tensor& sampling_locations, const torch::Tensor& attention_weights) {
  const int64_t N = value.size(0), M = value.size(2), D = value.size(3);
  const int64_t Lq = sampling_locations.size(1), L = sampling_locations.size(3), P = sampling_locations.size(4);
  std::vector<int64_t> sizes;
  for (const auto& hw : shapes) sizes.push_back(hw[0] * hw[1]);
  const auto values = value.split_with_sizes(sizes, 1);
  // grid_sample's grid is in [-1, 1].
  const torch::Tensor grids = sampling_locations * 2 - 1;
  std::vector<torch::Tensor> sampled;
  sampled.reserve(shapes.size());
  for (size_t l = 0; l < shapes.size(); ++l) {
    // [N, HW, M, D] -> [N*M, D, H, W]
    const torch::Tensor v = values[l].flatten(2).transpose(1, 2).reshape({N * M, D, shapes[l][0], shapes[l][1]});
    // [N, Lq, M, P, 2] -> [N*M, Lq, P, 2]
    const torch::Tensor g = grids.select(3, static_cast<int64_t>(l)).transpose(1, 2).flatten(0, 1);
    // interpolation 0 = bilinear, padding 0 = zeros: [N*M, D, Lq, P]
    sampled.push_back(torch::grid_sampler(v, g, 0, 0, /*align_corners=*/false));
  }
  const torch::Tensor w = attention_weights.transpose(1, 2).reshape({N * M, 1, Lq, L * P});
  const torch::Tensor out = (torch::stack(sampled, -2).flatten(-2) * w).sum(-1).view({N, M * D, Lq});
  return out.transpose(1, 2).contiguous();
}

MSDeformAttnImpl::MSDeformAttnImpl(int64_t d_model_, int64_t n_levels_, int64_t n_heads_, int64_t n_points_)
    : d_model(d_model_), n_levels(n_levels_), n_heads(n_heads_), n_points(n_points_) {
  if (d_model % n_heads != 0)
    throw std::invalid_argument("MSDeformAttn: d_model " + std::to_string(d_model) + " is not divisible by heads " +
                                std::to_string(n_heads));
  sampling_offsets = register_module("sampling_offsets", torch::nn::Linear(d_model, n_heads * n_levels * n_points * 2));
  attention_weights = register_module("attention_weights", torch::nn::Linear(d_model, n_heads * n_levels * n_points));
  value_proj = register_module("value_proj", torch::nn::Linear(d_model, d_model));
  output_proj = register_module("output_proj", torch::nn::Linear(d_model, d_model));
  reset_parameters();
}

void MSDeformAttnImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  sampling_offsets->weight.zero_();
  const torch::Tensor thetas = torch::arange(n_heads, torch::kFloat32) * (2.0 * M_PI / static_cast<double>(n_heads));
  torch::Tensor grid = torch::stack({thetas.cos(), thetas.sin()}, -1);
  grid = (grid / std::get<0>(grid.abs().max(-1, true))).view({n_heads, 1, 1, 2}).repeat({1, n_levels, n_points, 1});
  grid = grid * torch::arange(1, n_points + 1, torch::kFloat32).view({1, 1, n_points, 1});
  sampling_offsets->bias.copy_(grid.reshape(-1));
  attention_weights->weight.zero_();
  attention_weights->bias.zero_();
  torch::nn::init::xavier_uniform_(value_proj->weight);
  value_proj->bias.zero_();
  torch::nn::init::xavier_uniform_(output_proj->weight);
  output_proj->bias.zero_();
}

torch::Tensor MSDeformAttnImpl::forward(const torch::Tensor& query, const torch::Tensor& reference_points,
                                        const torch::Tensor& input_flatten, const SpatialShapes& shapes) {
  const int64_t N = query.size(0), Lq = query.size(1), S = input_flatten.size(1);
  int64_t total = 0;
  for (const auto& hw : shapes) total += hw[0] * hw[1];
  if (total != S || static_cast<int64_t>(shapes.size()) != n_levels)
    throw std::invalid_argument("MSDeformAttn: " + std::to_string(shapes.size()) + " levels of " +
                                std::to_string(total) + " positions for an input of " + std::to_string(S) +
                                " positions and " + std::to_string(n_levels) + " levels");
  const torch::Tensor value = value_proj(input_flatten).view({N, S, n_heads, d_model / n_heads});
  const torch::Tensor offsets = sampling_offsets(query).view({N, Lq, n_heads, n_levels, n_points, 2});
  const torch::Tensor weights = torch::softmax(attention_weights(query).view({N, Lq, n_heads, n_levels * n_points}), -1)
                                    .view({N, Lq, n_heads, n_levels, n_points});
  // Offsets are in pixels of each level: normalised by (W, H).
  std::vector<float> wh;
  for (const auto& hw : shapes) {
    wh.push_back(static_cast<float>(hw[1]));
    wh.push_back(static_cast<float>(hw[0]));
  }
  const torch::Tensor normalizer =
      torch::tensor(wh, torch::TensorOptions().dtype(torch::kFloat32)).to(offsets.device(), offsets.scalar_type())
          .view({1, 1, 1, n_levels, 1, 2});
  using torch::indexing::None;
  using torch::indexing::Slice;
  const torch::Tensor locations =
      reference_points.index({Slice(), Slice(), None, Slice(), None, Slice()}) + offsets / normalizer;
  return output_proj(ms_deform_attn_core(value, shapes, locations, weights));
}

}  // namespace rass::nn
