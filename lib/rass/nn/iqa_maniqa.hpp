// MANIQA (Yang et al., CVPRW 2022; official code IIGROUP/MANIQA, Apache-2.0,
// models/maniqa.py and models/swin.py): a timm ViT-B/8 at 224 whose blocks
// 6..9 outputs (class token dropped) are concatenated, then two stages of
// [transposed-attention blocks (TABlock: attention across channels, with the
// reference's transpose-then-reshape of the result kept as is), a 1x1 conv
// reduction, a residual-scaled Swin stage (window attention with relative
// position bias and shifted windows, each layer followed by a 3x3 conv +
// ReLU)], and a dual head per patch: score (ReLU) and weight (sigmoid).
//
// Module names are the reference's state-dict keys: vit.{patch_embed.proj,
// cls_token, pos_embed, blocks.i.{norm1, attn.{qkv, proj}, norm2, mlp.{fc1,
// fc2}}}, tablock{1,2}.i.{c_q, c_k, c_v}, conv1, conv2,
// swintransformer{1,2}.layers.i.{conv, blocks.j.{norm1, attn.{
// relative_position_bias_table, qkv, proj}, norm2, mlp.{fc1, fc2}}},
// fc_score.{0,3}, fc_weight.{0,3}. Only ViT blocks 0..9 exist here (10, 11,
// the final norm and the classifier never reach the score); the index
// buffers (relative_position_index, attn_mask) are recomputed, not loaded.
// Inference only (dropout and drop-path are identities).
#pragma once
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include "rass/nn/linear.hpp"

namespace rass::nn {

struct ManiqaConfig {
  int64_t img_size = 224, patch_size = 8;  // crops are img_size square; grid = img_size / patch_size
  int64_t vit_dim = 768, vit_heads = 12, vit_mlp = 3072;
  int64_t embed_dim = 768;  // conv1: 4*vit_dim -> embed_dim; conv2: -> embed_dim/2
  int64_t num_tab = 2;
  std::vector<int64_t> depths{2, 2}, num_heads{4, 4};
  int64_t window_size = 4, dim_mlp = 768;
  double scale = 0.8;  // Swin residual: x = scale * layer(x) + x (pyiqa: 0.8 KonIQ/KADID, 0.13 PIPAL)
};

struct ManiqaPatches {
  torch::Tensor score;   // [B, P] per-patch quality (fc_score, ReLU)
  torch::Tensor weight;  // [B, P] per-patch weight (fc_weight, sigmoid)
};

struct ManiqaImpl : torch::nn::Module {
  explicit ManiqaImpl(const ManiqaConfig& c);
  // crops: [B,3,S,S], S = img_size, normalised ((x - 0.5) / 0.5).
  ManiqaPatches forward(const torch::Tensor& crops);
  // The official per-crop score: sum(score * weight) / sum(weight) -> [B].
  torch::Tensor crop_scores(const torch::Tensor& crops);

  ManiqaConfig config;
  std::shared_ptr<torch::nn::Module> vit;
  torch::nn::Conv2d patch_proj{nullptr}, conv1{nullptr}, conv2{nullptr};
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList vit_blocks{nullptr}, tablock1{nullptr}, tablock2{nullptr};
  std::shared_ptr<torch::nn::Module> swin1, swin2;
  rass::nn::Linear score0{nullptr}, score3{nullptr}, weight0{nullptr}, weight3{nullptr};
};
TORCH_MODULE(Maniqa);

}  // namespace rass::nn
