// Mask2Former's MSDeformAttnPixelDecoder (pixel_decoder/msdeformattn.py) with
// the official names: input_proj.{i}.{0 conv, 1 GroupNorm} (lowest resolution
// first), transformer.level_embed, transformer.encoder.layers.{i}.{self_attn,
// norm1, linear1, linear2, norm2}, mask_features, and the FPN levels below the
// encoder's finest input as adapter_{k} (lateral 1x1 conv + GN) and layer_{k}
// (3x3 conv + GN + ReLU), k = 1 for the finest input.
#pragma once
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "rass/nn/d2_conv.hpp"
#include "rass/nn/linear.hpp"
#include "rass/nn/mask_former_head.hpp"
#include "rass/nn/ms_deform_attn.hpp"

namespace rass::nn {

struct MSDeformAttnEncoderLayerImpl : torch::nn::Module {
  MSDeformAttnEncoderLayerImpl(int64_t d_model, int64_t d_ffn, int64_t n_levels, int64_t n_heads, int64_t n_points);
  // Post-norm: self-attention (query = src + pos, values = src), then the FFN.
  torch::Tensor forward(const torch::Tensor& src, const torch::Tensor& pos, const torch::Tensor& reference_points,
                        const SpatialShapes& shapes);
  MSDeformAttn self_attn{nullptr};
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  rass::nn::Linear linear1{nullptr}, linear2{nullptr};
};
TORCH_MODULE(MSDeformAttnEncoderLayer);

struct MSDeformAttnEncoderImpl : torch::nn::Module {
  MSDeformAttnEncoderImpl(int64_t layers, int64_t d_model, int64_t d_ffn, int64_t n_levels, int64_t n_heads,
                          int64_t n_points);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(MSDeformAttnEncoder);

// MSDeformAttnTransformerEncoderOnly: "encoder" and "level_embed".
struct MSDeformAttnTransformerImpl : torch::nn::Module {
  MSDeformAttnTransformerImpl(const MaskFormerHeadConfig& c);
  // srcs / pos: per level [B, C, H, W] (lowest resolution first) -> the
  // encoded tokens [B, sum H*W, C], levels concatenated in the same order.
  torch::Tensor forward(const std::vector<torch::Tensor>& srcs, const std::vector<torch::Tensor>& pos,
                        SpatialShapes& shapes_out);
  MSDeformAttnEncoder encoder{nullptr};
  torch::Tensor level_embed;
};
TORCH_MODULE(MSDeformAttnTransformer);

// The centres of every level's pixels, (x, y) in [0, 1]: [1, S, L, 2]
// (get_reference_points with all valid ratios 1: nothing is padded).
torch::Tensor deform_reference_points(const SpatialShapes& shapes, int64_t levels, const torch::TensorOptions& opts);

struct PixelDecoderOutput {
  torch::Tensor mask_features;                      // [B, mask_dim, H2, W2]
  torch::Tensor transformer_encoder_features;      // the encoder's coarsest level
  std::vector<torch::Tensor> multi_scale_features;  // 3 levels, coarsest first
};

class MSDeformAttnPixelDecoderImpl : public torch::nn::Module {
 public:
  explicit MSDeformAttnPixelDecoderImpl(const MaskFormerHeadConfig& c);
  // features: res2..res5 as the head receives them.
  PixelDecoderOutput forward_features(const std::vector<torch::Tensor>& features);

  torch::nn::ModuleList input_proj;
  MSDeformAttnTransformer transformer{nullptr};
  D2Conv2d mask_features{nullptr};
  std::vector<D2Conv2d> lateral_convs, output_convs;  // finest first (adapter_1, layer_1, ...)

 private:
  MaskFormerHeadConfig config_;
  int64_t num_fpn_levels_ = 0;
};
TORCH_MODULE(MSDeformAttnPixelDecoder);

// log2(finest encoder stride) - log2(common_stride): the FPN levels added
// below the encoder (1 in the released config: res2).
int64_t pixel_decoder_fpn_levels(const MaskFormerHeadConfig& c);

}  // namespace rass::nn
