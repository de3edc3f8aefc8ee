// MUSIQ, the multi-scale image quality transformer (Ke et al., ICCV 2021;
// official code: google-research musiq/, Apache-2, JAX/flax), as the released
// checkpoints are built: each 32x32 patch goes through a small ResNet stem
// (weight-standardized 7x7/2 conv, GroupNorm, 3x3/2 max pool, one bottleneck
// unit with projection: 32x32x3 -> 8x8x256), flattened H,W,C and projected
// to the hidden size; the hash-based spatial embedding (a 10x10 grid) and the
// scale embedding are added, a class token is prepended, 14 pre-norm encoder
// blocks (6 heads, MLP 1152) and a final LayerNorm follow, and the head reads
// the class token (one score, or a 10-bin distribution for AVA).
//
// Module names are those of the PyTorch state dict users have (pyiqa's
// musiq_*_ckpt .pth files, converted to safetensors by
// scripts/convert_iqa_musiq.py): conv_root, gn_root, block1.{conv1, gn1,
// conv2, gn2, conv3, gn3, conv_proj, gn_proj}, embedding,
// transformer_encoder.{cls, posembed_input.position_emb,
// scaleembed_input.scale_emb, encoder_norm,
// transformer.encoderblock_N.{norm1, attention.{query, key, value, out},
// norm2, mlp.{fc1, fc2}}}, head (one output) or head.0 (a distribution).
//
// Conventions of that port, which its numbers (the ones papers report)
// depend on: the GELU is exact (flax: the tanh approximation; on the test
// fixture that alone moves scores by ~1e-4), GroupNorm eps 1e-6 in the root
// and 1e-4 in the unit, LayerNorm eps 1e-6, TF "SAME" padding (the extra
// pixel after). The conv kernels are standardized with the unbiased standard
// deviation plus 1e-5 as the port does (flax: the biased one); that choice
// scales every channel of a conv by the same factor, which the GroupNorm
// after it removes (the biased variant also passes the parity test).
#pragma once
#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "rass/nn/group_norm.hpp"
#include "rass/nn/linear.hpp"

namespace rass::nn {

struct MusiqBlock;  // one encoder block (iqa_musiq.cpp)

struct MusiqConfig {
  int64_t num_classes = 1;  // 1: a score (KonIQ, SPAQ, PaQ-2-PiQ); 10: AVA's distribution
  int64_t hidden_size = 384, num_layers = 14, num_heads = 6, mlp_dim = 1152;
  int64_t spatial_grid = 10, num_scales = 3, patch_size = 32;
};

struct MusiqNetImpl : torch::nn::Module {
  explicit MusiqNetImpl(const MusiqConfig& c);
  // patches [B, L, 3, P, P] (values in [-1, 1]); spatial [L] and scale [L]
  // (int64) the hash-grid and scale index of each token, the same for every
  // image of the batch (same-size images share the layout). Padding tokens
  // are not passed: the reference masks them out of every attention, which
  // leaves the class token's value the same as leaving them out.
  // Returns the head's output [B, num_classes] (logits; see score()).
  torch::Tensor forward(const torch::Tensor& patches, const torch::Tensor& spatial, const torch::Tensor& scale);
  // The quality: the head's value, or for a distribution the mean bin
  // (softmax, bins 1..num_classes) as the reference's dist_to_mos. [B].
  torch::Tensor score(const torch::Tensor& patches, const torch::Tensor& spatial, const torch::Tensor& scale);
  // The 8x8x256 stem features of [N, 3, P, P] patches, flattened H,W,C: [N, 16384].
  torch::Tensor stem(const torch::Tensor& x);

  MusiqConfig config;
  torch::nn::Conv2d conv_root{nullptr}, conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, conv_proj{nullptr};
  rass::nn::GroupNorm gn_root{nullptr}, gn1{nullptr}, gn2{nullptr}, gn3{nullptr}, gn_proj{nullptr};
  rass::nn::Linear embedding{nullptr}, head{nullptr};
  std::shared_ptr<torch::nn::Module> encoder;
  torch::Tensor cls, position_emb, scale_emb;
  std::vector<std::shared_ptr<MusiqBlock>> blocks;  // transformer.encoderblock_N
  torch::nn::LayerNorm encoder_norm{nullptr};
};
TORCH_MODULE(MusiqNet);

}  // namespace rass::nn
