// rass-train ras: RASS stage 2 (seed 000 section 3.3; Ka1Guan/RASS as
// released, REFERENCE.md section 4). Starts from a segmentation model folder
// (rass-merge-lora init-seg, rass-model init --preset tiny-seg, or a
// converted rass.pth) and trains the Seg LoRA (adapters default_*_s2, left
// unmerged), the UNet's conv_in, the feature projection and the Mask2Former
// head with Mask2Former's criterion; VAE, text encoder and the UNet's base
// weights stay frozen.
//
// One step, per sample: the data pipeline's LQ crop (ras_data.hpp) ->
// [-1, 1] -> VAE encoder (frozen; its down_blocks[1], [3] taps; latent
// = mean + std * noise keyed by (seed, step, sample)) -> UNet at the folder's
// timestep with the prompt's text embedding -> up-block taps -> projection ->
// head -> the criterion against the HQ crop's label map.
//
// Optimizer groups as released (Mask2Former's build_optimizer): everything
// under the backbone (Seg LoRA, conv_in, projections) at lr x 0.1; weight
// decay 0 for the parameters of GroupNorm / LayerNorm / Embedding modules
// (query_feat, query_embed, the predictor's level_embed), the loop's (0.05)
// otherwise. The pixel decoder's transformer.level_embed is a plain
// parameter in Mask2Former's code, not an Embedding, so it decays as released.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rass/model/segment_model.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/mask2former_criterion.hpp"
#include "rass/train/ras_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo ras_stage_info();

// The stage's settings (the "stage" section; ras_stage_info().defaults()).
struct RasSettings {
  std::string model;  // the segmentation model folder to start from
  RasDataConfig data;
  bool check_labels = true;  // read every label map before the first step
  std::string prompt = "classes";  // classes | none | any other text (fixed)
  CriterionConfig criterion;
  double backbone_lr_mult = 0.1;
  double weight_decay_norm = 0.0, weight_decay_embed = 0.0;
};
// Reads and checks the section: unknown keys and wrong types are
// Error(usage) naming the key.
RasSettings parse_ras_settings(const nlohmann::ordered_json& stage_config);

class RasStage : public Stage {
 public:
  RasStage(const RasSettings& s, const StageEnv& env);
  std::string name() const override { return "ras"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;

  // The network on a batch of LQ crops x [B, 3, H, W] in [-1, 1] with text
  // embeddings `context` [B, 77, D]; `noise` [B, 4, H/8, W/8] (undefined:
  // the latent is the VAE's mean, as rass-segment --vae-mode does).
  nn::MaskFormerOutput forward(const torch::Tensor& x, const torch::Tensor& context, const torch::Tensor& noise);
  // The prompt text of a sample whose label map holds `classes`.
  std::string prompt_text(const std::vector<int>& classes) const;
  // The text embedding [1, 77, D] of a prompt (frozen encoder, cached).
  torch::Tensor encode_prompt(const std::string& text);
  const RasData& data() const { return *data_; }
  model::SegmentModel& model() { return *model_; }

 private:
  RasSettings s_;
  StageEnv env_;
  std::unique_ptr<model::SegmentModel> model_;
  std::unique_ptr<RasData> data_;
  std::unique_ptr<DataOrder> order_;
  std::mutex prompt_mu_;
  std::map<std::string, torch::Tensor> prompt_cache_;
};

}  // namespace rass::train
