// SwinIR as DreamClear runs it for its pre-restoration (seed 003;
// diffusion/model/nets/swinir.py of shallowdream204/DreamClear, DiffBIR's
// variant of SwinIR): pixel-unshuffle by 8, a 3x3 conv, residual Swin
// transformer blocks (RSTB) at 1/8 resolution, then "nearest+conv"
// upsampling back to the input size. Module names equal the checkpoint's
// keys (conv_first.1, patch_embed.norm, layers.i.residual_group.blocks.j.*,
// layers.i.conv, norm, conv_after_body, conv_before_upsample.0, conv_up1..3,
// conv_hr, conv_last); the derived buffers relative_position_index and
// attn_mask are dropped by scripts/convert_dreamclear.py and computed here.
//
// As the reference: the input is reflect-padded to a multiple of
// window_size (not of window_size * 8: the caller gives multiples of 64),
// normalised by (x - RGB mean) * img_range; LayerNorm eps 1e-5, exact GELU;
// conv_before_upsample's LeakyReLU has slope 0.01, the later ones 0.2; a
// block keeps its window unless the configured img_size is not larger
// (then window = img_size, no shift), and the shifted windows' mask is the
// standard one recomputed for the input's size.
#pragma once
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/linear.hpp"
#include "rass/nn/resshift_unet.hpp"

namespace rass::nn {

struct SwinIRConfig {
  int64_t in_chans = 3, embed_dim = 180;
  std::vector<int64_t> depths{6, 6, 6, 6, 6, 6, 6, 6}, num_heads{6, 6, 6, 6, 6, 6, 6, 6};
  int64_t window_size = 8;
  double mlp_ratio = 2.0;
  int64_t img_size = 64, sf = 8, unshuffle_scale = 8;
  std::string upsampler = "nearest+conv", resi_connection = "1conv";
  double img_range = 1.0;
};

// swinir.py Mlp: fc1, exact GELU, fc2.
struct SwinIRMlpImpl : torch::nn::Module {
  SwinIRMlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);
  Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(SwinIRMlp);

// A conv registered as child `index` of a holder (nn.Sequential's names:
// conv_first.1 after the PixelUnshuffle, conv_before_upsample.0).
struct IndexedConvImpl : torch::nn::Module {
  IndexedConvImpl(int index, const torch::nn::Conv2dOptions& o);
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(IndexedConv);

// swinir.py SwinTransformerBlock on [B, H*W, C] tokens.
struct SwinIRBlockImpl : torch::nn::Module {
  SwinIRBlockImpl(int64_t dim, int64_t resolution, int64_t heads, int64_t window, int64_t shift, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  SwinWindowAttention attn{nullptr};
  SwinIRMlp mlp{nullptr};
  int64_t window, shift;
};
TORCH_MODULE(SwinIRBlock);

// The standard Swin mask of shifted windows for an H x W map: [nW, N, N], 0 or -100.
torch::Tensor swinir_shift_mask(int64_t H, int64_t W, int64_t window, int64_t shift);

// RSTB: residual_group.blocks, conv, plus the input.
struct SwinIRLayerImpl : torch::nn::Module {
  SwinIRLayerImpl(const SwinIRConfig& c, int64_t depth, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x, int64_t H, int64_t W);
  torch::nn::ModuleList blocks{nullptr};  // residual_group.blocks
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(SwinIRLayer);

struct SwinIRImpl : torch::nn::Module {
  explicit SwinIRImpl(const SwinIRConfig& c);
  // x [B, 3, H, W] in [0, 1] -> the restored image of the padded size (the
  // reference's crop keeps all of it), unclamped.
  torch::Tensor forward(const torch::Tensor& x);
  SwinIRConfig config;
  IndexedConv conv_first{nullptr}, conv_before_upsample{nullptr};
  torch::nn::Conv2d conv_after_body{nullptr}, conv_up1{nullptr}, conv_up2{nullptr}, conv_up3{nullptr}, conv_hr{nullptr},
      conv_last{nullptr};
  torch::nn::LayerNorm patch_norm{nullptr}, norm{nullptr};  // patch_embed.norm, norm
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(SwinIR);

}  // namespace rass::nn
