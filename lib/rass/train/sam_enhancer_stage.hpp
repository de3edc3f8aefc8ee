// rass-train sam-enhancer: GleSAM's first stage (seed 001, Sec. 3.4 and
// Algorithm 1; its train_glesam_denoising_unet.py and
// models/sd_unifined_model_CRE_addlora.py, REFERENCE.md section 6): the
// generative latent enhancer trained to map SAM's embedding of an LQ image
// to that of its HQ image.
//
// The enhancer is a Stable Diffusion UNet with GleSAM's Channel Replication
// and Expansion (conv_in's weight repeated along its inputs and conv_out's
// weight and bias along its outputs, to the embedding's D channels: x64 for
// SD's 4 and SAM's 256), frozen, with PEFT LoRA adapters (rank 8, alpha 8,
// no dropout; A Kaiming-uniform, B zero, as PEFT initialises them) on
// GleSAM's target modules: to_q, to_k, to_v, to_out.0, proj_in, proj_out,
// ff.net.0.proj, ff.net.2, conv1, conv2, conv_shortcut, downsamplers.0.conv,
// upsamplers.0.conv, time_emb_proj, conv_in, conv_out (PEFT's suffix match).
//
// One step, per sample: SAM's frozen image encoder embeds the HQ and LQ
// images (z_H, z_L; no gradient) as GleSAM's SAM_Encoder does (the [0, 1]
// image x 255, ResizeLongestSide.apply_image_torch: bilinear with
// antialiasing on floats, normalised, padded); x = g z_L (g the feature
// weight, FDA); eps = UNet(x, T = 1, CLIP("")); x0 = (x - sqrt(1 - a_T) eps)
// / sqrt(a_T) in float64 (get_x0_from_noise); loss = MSE(x0, g z_H) (its
// loss_spatial: the released generator's data term, in the scaled space;
// `loss_space` "embedding" takes the paper's Eq. 5 on x0 / g and z_H).
// The released trainer adds a DMD2 distribution-matching term and a GAN
// term from a second ("fake") UNet and a classifier; they are not built here
// (the paper's Algorithm 1 is the MSE alone).
//
// Loop defaults as released: AdamW lr 1e-4, weight decay 0.01, betas (0.9,
// 0.999), constant after 500 linear warmup steps from 0, gradient norm
// clipped at 10, batch 4 (its 4 GPUs x 1).
//
// The export is a GleSAM folder rass-sam runs: the SAM folder's files, the
// UNet with the adapters merged (unet/), the text encoder, tokenizer and
// scheduler of the SD folder, sam.json's "enhancer" {feat_weight, timestep,
// prompt ""}; and the adapters alone (glesam_lora.safetensors, PEFT's names
// under "unet.", which rass-merge-lora merges into a CRE-expanded UNet).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rass/model/sam_model.hpp"
#include "rass/nn/unet.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/sam_enhancer_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo sam_enhancer_stage_info();

// GleSAM's LoRA target modules (its lora_target_modules list).
const std::vector<std::string>& glesam_lora_targets();

struct SamEnhancerSettings {
  std::string model;  // the SAM v1 folder (its image encoder; a GleSAM folder: its enhancer is the start)
  std::string sd;     // the diffusers SD folder of the UNet, text encoder, tokenizer and scheduler ("" = model's enhancer)
  double feat_weight = 0;        // g (FDA): 5 in the paper, 3 in GleSAM's demo; 0: the start's enhancer's, else 5
  int timestep = -1;             // T (its conditioning_timestep); -1: the start's enhancer's, else 1
  int64_t lora_rank = 8;
  double lora_alpha = 8;
  std::vector<std::string> lora_targets;
  std::string loss_space = "scaled";  // scaled (as released: x0 vs g z_H) or embedding (Eq. 5: x0 / g vs z_H)
  SamEnhancerDataConfig data;
  bool check_data = true;
};
SamEnhancerSettings parse_sam_enhancer_settings(const nlohmann::ordered_json& stage_config);

class SamEnhancerStage : public Stage {
 public:
  SamEnhancerStage(const SamEnhancerSettings& s, const StageEnv& env);
  std::string name() const override { return "sam-enhancer"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;

  // GleSAM's SAM_Encoder input of an 8-bit RGB image: [1, 3, S, S] on the
  // model's device (float resize, normalised, padded).
  torch::Tensor encoder_input(const Image& rgb) const;
  // SAM's embeddings of encoder inputs [N, 3, S, S] -> [N, D, g, g], no gradient.
  torch::Tensor embed(const torch::Tensor& pixels) const;
  // The loss of LQ and HQ embeddings [B, D, g, g], with the graph through the adapters.
  torch::Tensor loss(const torch::Tensor& z_lq, const torch::Tensor& z_hq) const;
  // The enhanced embedding x0 / g of an LQ embedding (what rass-sam computes).
  torch::Tensor enhance(const torch::Tensor& z_lq) const;
  nn::UNet2DCondition& unet() { return unet_; }
  // The layer paths that carry an adapter.
  std::vector<std::string> adapted_layers() const;
  const SamEnhancerData& data() const { return *data_; }

 private:
  torch::Tensor x0(const torch::Tensor& z_lq) const;
  SamEnhancerSettings s_;
  StageEnv env_;
  std::string text_dir_;  // where the text encoder, tokenizer and scheduler come from
  std::string unet_dir_;
  std::unique_ptr<model::SamModel> sam_;
  nn::UNet2DCondition unet_{nullptr};
  nlohmann::ordered_json unet_config_;  // the UNet's config.json, channels expanded
  torch::Tensor context_;                // CLIP("") [1, T, C]
  double alpha_bar_ = 1;
  std::unique_ptr<SamEnhancerData> data_;
  std::unique_ptr<DataOrder> order_;
};

}  // namespace rass::train
