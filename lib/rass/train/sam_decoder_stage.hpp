// rass-train sam-decoder: GleSAM's second stage (seed 001; its
// train_glesam_decoder.py, REFERENCE.md section 6): SAM's mask decoder
// fine-tuned on LQ images, with the image embedding GleSAM's enhancer makes
// of them when the folder has one (a GleSAM folder), or SAM's own embedding
// (plain SAM: a decoder adapted to degraded inputs).
//
// Frozen: the image encoder, the prompt encoder, the enhancer, and the
// decoder's IoU token and IoU head (SamJoint._init_weight trains every
// mask_decoder parameter whose name lacks "iou"). One step, per sample: the
// data pipeline's LQ image and object (sam_decoder_data.hpp) -> SamPredictor's
// resize and normalisation -> embedding (no gradient) -> enhancement ->
// prompt encoder -> mask decoder, single mask (multimask_output=False) ->
// its 256x256 logits upsampled bilinearly (align_corners=False) to the
// mask's size -> focal loss (alpha 0.25, gamma 2, the mean over every
// pixel of the batch) + Dice loss (smooth 1e-6, per mask, the mean over the
// batch), against the resized mask / 255.
//
// Loop defaults as released: torch.optim.Adam (L2 weight decay 1e-5), lr
// 1e-4, constant (its StepLR(10) never fires in its 6 epochs), no gradient
// clipping, batch 1. The export is the start folder with the trained decoder
// in sam.safetensors: rass-sam runs it.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rass/model/sam_model.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/sam_decoder_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo sam_decoder_stage_info();

struct SamDecoderSettings {
  std::string model;            // the SAM or GleSAM folder to start from
  std::string enhance = "auto";  // auto (the folder's enhancer, if any), on, off
  // decoder: every mask-decoder tensor whose name lacks "iou" (as released);
  // tokens: the mask tokens and their hypernetwork MLPs only (the paper's
  // other choice, left commented out in SamJoint._init_weight).
  std::string trainable = "decoder";
  SamDecoderDataConfig data;
  bool check_data = true;       // read every pair before the first step
  double focal_weight = 1, dice_weight = 1;
  double focal_alpha = 0.25, focal_gamma = 2, dice_smooth = 1e-6;
};
SamDecoderSettings parse_sam_decoder_settings(const nlohmann::ordered_json& stage_config);

struct SamMaskLoss {
  torch::Tensor focal, dice;  // scalars
};
// GleSAM's utils/loss.py: logits and targets [B, 1, H, W] (targets in [0, 1]).
SamMaskLoss sam_mask_loss(const torch::Tensor& logits, const torch::Tensor& targets, double alpha, double gamma,
                          double smooth);

class SamDecoderStage : public Stage {
 public:
  SamDecoderStage(const SamDecoderSettings& s, const StageEnv& env);
  std::string name() const override { return "sam-decoder"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;

  // The decoder's input for an image: its (enhanced) embedding, no gradient.
  torch::Tensor embed(const model::SamInput& in) const;
  // The single-mask logits [1, 1, 256, 256] of one object (prompts in the
  // input image's pixels), with the graph through the decoder.
  torch::Tensor decode(const torch::Tensor& embedding, const model::SamInput& in,
                       const std::vector<std::array<double, 2>>& points,
                       const std::optional<std::array<double, 4>>& box) const;
  model::SamModel& model() { return *model_; }
  const SamDecoderData& data() const { return *data_; }

 private:
  SamDecoderSettings s_;
  StageEnv env_;
  std::unique_ptr<model::SamModel> model_;
  std::unique_ptr<SamDecoderData> data_;
  std::unique_ptr<DataOrder> order_;
};

}  // namespace rass::train
