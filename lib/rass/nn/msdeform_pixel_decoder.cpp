#include "rass/nn/msdeform_pixel_decoder.hpp"

#include <cmath>
#include <string>

#include <torch/nn/init.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/torch.h>

#include "rass/nn/group_norm.hpp"
#include "rass/nn/linear.hpp"
#include "rass/nn/position_encoding.hpp"

namespace rass::nn {

MSDeformAttnEncoderLayerImpl::MSDeformAttnEncoderLayerImpl(int64_t d_model, int64_t d_ffn, int64_t n_levels,
                                                           int64_t n_heads, int64_t n_points) {
  self_attn = register_module("self_attn", MSDeformAttn(d_model, n_levels, n_heads, n_points));
  norm1 = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
  linear1 = register_module("linear1", rass::nn::Linear(d_model, d_ffn));
  linear2 = register_module("linear2", rass::nn::Linear(d_ffn, d_model));
  norm2 = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d_model})));
}

torch::Tensor MSDeformAttnEncoderLayerImpl::forward(const torch::Tensor& src, const torch::Tensor& pos,
                                                    const torch::Tensor& reference_points,
                                                    const SpatialShapes& shapes) {
  torch::Tensor x = norm1(src + self_attn(src + pos, reference_points, src, shapes));
  return norm2(x + linear2(torch::relu(linear1(x))));
}

MSDeformAttnEncoderImpl::MSDeformAttnEncoderImpl(int64_t n, int64_t d_model, int64_t d_ffn, int64_t n_levels,
                                                 int64_t n_heads, int64_t n_points) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < n; ++i) layers->push_back(MSDeformAttnEncoderLayer(d_model, d_ffn, n_levels, n_heads, n_points));
}

MSDeformAttnTransformerImpl::MSDeformAttnTransformerImpl(const MaskFormerHeadConfig& c) {
  encoder = register_module("encoder", MSDeformAttnEncoder(c.enc_layers, c.conv_dim, c.enc_dim_feedforward,
                                                           c.deformable_levels, c.enc_nheads, c.enc_n_points));
  level_embed = register_parameter("level_embed", torch::empty({c.deformable_levels, c.conv_dim}));
  // The official _reset_parameters: xavier for every matrix, then the
  // attention modules' own init, then N(0, 1) level embeddings.
  torch::NoGradGuard no_grad;
  for (auto& p : parameters())
    if (p.dim() > 1) torch::nn::init::xavier_uniform_(p);
  for (auto& m : modules(false))
    if (auto* a = m->as<MSDeformAttnImpl>()) a->reset_parameters();
  level_embed.normal_();
}

torch::Tensor deform_reference_points(const SpatialShapes& shapes, int64_t levels, const torch::TensorOptions& opts) {
  std::vector<torch::Tensor> refs;
  for (const auto& hw : shapes) {
    const int64_t H = hw[0], W = hw[1];
    const auto f32 = opts.dtype(torch::kFloat32);
    auto grids = torch::meshgrid({torch::linspace(0.5, H - 0.5, H, f32), torch::linspace(0.5, W - 0.5, W, f32)}, "ij");
    const torch::Tensor ry = grids[0].reshape(-1) / static_cast<double>(H);
    const torch::Tensor rx = grids[1].reshape(-1) / static_cast<double>(W);
    refs.push_back(torch::stack({rx, ry}, -1));
  }
  // Every query keeps the same normalised point at every level.
  return torch::cat(refs, 0).unsqueeze(0).unsqueeze(2).expand({1, -1, levels, 2}).to(opts.dtype());
}

torch::Tensor MSDeformAttnTransformerImpl::forward(const std::vector<torch::Tensor>& srcs,
                                                   const std::vector<torch::Tensor>& pos, SpatialShapes& shapes) {
  std::vector<torch::Tensor> flat, flat_pos;
  shapes.clear();
  for (size_t l = 0; l < srcs.size(); ++l) {
    shapes.push_back({srcs[l].size(2), srcs[l].size(3)});
    flat.push_back(srcs[l].flatten(2).transpose(1, 2));
    flat_pos.push_back(pos[l].flatten(2).transpose(1, 2) + level_embed[static_cast<int64_t>(l)].view({1, 1, -1}));
  }
  torch::Tensor x = torch::cat(flat, 1);
  const torch::Tensor p = torch::cat(flat_pos, 1);
  const torch::Tensor ref = deform_reference_points(shapes, static_cast<int64_t>(srcs.size()), x.options())
                                .expand({x.size(0), -1, -1, -1});
  for (const auto& layer : *encoder->layers) x = layer->as<MSDeformAttnEncoderLayerImpl>()->forward(x, p, ref, shapes);
  return x;
}

int64_t pixel_decoder_fpn_levels(const MaskFormerHeadConfig& c) {
  const size_t first = c.in_strides.size() - static_cast<size_t>(c.deformable_levels);
  return static_cast<int64_t>(std::lround(std::log2(c.in_strides[first]) - std::log2(c.common_stride)));
}

MSDeformAttnPixelDecoderImpl::MSDeformAttnPixelDecoderImpl(const MaskFormerHeadConfig& c) : config_(c) {
  const int64_t n = static_cast<int64_t>(c.in_channels.size());
  input_proj = register_module("input_proj", torch::nn::ModuleList());
  for (int64_t l = n - 1; l >= n - c.deformable_levels; --l) {
    torch::nn::Conv2d conv(torch::nn::Conv2dOptions(c.in_channels[l], c.conv_dim, 1));
    torch::nn::init::xavier_uniform_(conv->weight, 1.0);
    torch::nn::init::zeros_(conv->bias);
    input_proj->push_back(torch::nn::Sequential(conv, rass::nn::GroupNorm(c.norm_groups, c.conv_dim)));
  }
  transformer = register_module("transformer", MSDeformAttnTransformer(c));
  mask_features = register_module("mask_features", D2Conv2d(D2Conv2dOptions{c.conv_dim, c.mask_dim}));
  num_fpn_levels_ = pixel_decoder_fpn_levels(c);
  // detectron2 convs with GN have no bias (use_bias = norm == "").
  for (int64_t k = 0; k < num_fpn_levels_; ++k) {
    lateral_convs.push_back(register_module("adapter_" + std::to_string(k + 1),
                                            D2Conv2d(D2Conv2dOptions{c.in_channels[k], c.conv_dim, 1, 0, false, c.norm_groups})));
    output_convs.push_back(register_module("layer_" + std::to_string(k + 1),
                                           D2Conv2d(D2Conv2dOptions{c.conv_dim, c.conv_dim, 3, 1, false, c.norm_groups, true})));
  }
}

PixelDecoderOutput MSDeformAttnPixelDecoderImpl::forward_features(const std::vector<torch::Tensor>& inputs) {
  // The reference runs the pixel decoder in fp32 even under AMP (autocast off,
  // features .float()): inputs take this module's dtype, so a caller can keep
  // it in fp32 while the rest runs in half precision.
  const auto dtype = transformer->level_embed.scalar_type();
  std::vector<torch::Tensor> features;
  for (const auto& f : inputs) features.push_back(f.to(dtype));
  const int64_t n = static_cast<int64_t>(features.size());
  std::vector<torch::Tensor> srcs, pos;
  int64_t idx = 0;
  for (int64_t l = n - 1; l >= n - config_.deformable_levels; --l, ++idx) {
    srcs.push_back(input_proj[idx]->as<torch::nn::SequentialImpl>()->forward(features[l]));
    pos.push_back(position_embedding_sine(features[l], config_.conv_dim / 2));
  }
  SpatialShapes shapes;
  const torch::Tensor y = transformer(srcs, pos, shapes);
  const int64_t B = y.size(0);
  std::vector<int64_t> sizes;
  for (const auto& hw : shapes) sizes.push_back(hw[0] * hw[1]);
  const auto levels = y.split_with_sizes(sizes, 1);
  std::vector<torch::Tensor> out;
  for (size_t l = 0; l < levels.size(); ++l)
    out.push_back(levels[l].transpose(1, 2).reshape({B, -1, shapes[l][0], shapes[l][1]}));
  // FPN levels below the encoder, coarsest first: lateral + bilinear upsample
  // of the level above (the reference's comment says nearest; the code is bilinear).
  for (int64_t k = num_fpn_levels_ - 1; k >= 0; --k) {
    const torch::Tensor cur = lateral_convs[k](features[k]);
    const torch::Tensor up =
        torch::upsample_bilinear2d(out.back(), {cur.size(2), cur.size(3)}, /*align_corners=*/false);
    out.push_back(output_convs[k](cur + up));
  }
  PixelDecoderOutput r;
  r.mask_features = mask_features(out.back());
  r.transformer_encoder_features = out[0];
  for (size_t i = 0; i < out.size() && i < 3; ++i) r.multi_scale_features.push_back(out[i]);
  return r;
}

}  // namespace rass::nn
