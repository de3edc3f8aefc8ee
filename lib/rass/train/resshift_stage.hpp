// rass-train resshift: ResShift's own training (zsyOAOA/ResShift,
// models/gaussian_diffusion.py training_losses; its trainer), fine-tuning a
// rass-samsr folder's network on the whole chain: the teacher sinsr distils.
//
// Per sample, in the VQ-f4 latent (samsr_model.hpp): z_y = E(bicubic x4 of
// the LQ crop), z_0 = E(HQ crop), both without gradient; a step t drawn
// uniformly from 0..T-1 and noise N(0, 1), both keyed by the sample;
//   z_t = z_0 + eta_t (z_y - z_0) + kappa sqrt(eta_t) noise      (q_sample)
//   mse = mean (z_0 - f(z_t / sqrt(eta_t kappa^2 + 1), t, lq))^2  (predict x_0, weighted_mse off)
// and, with lpips_weight > 0 (ResShift v3's TrainerDifIRLPIPS), LPIPS-VGG
// between the decoded prediction (through the codebook by the
// straight-through estimator, clamped to [-1, 1]) and the HQ crop.
// loss = mean over samples of mse + lpips_weight lpips.
//
// Loop defaults as released (realsr_swinunet_realesrgan256.yaml): AdamW lr
// 5e-5, weight decay 0, linear warmup from 0 over 5000 steps, constant after
// (v3's decays to 2e-5: loop.schedule cosine, loop.lr_min), no clipping, batch 64, EMA
// 0.999 (the export holds it). Data: sinsr_data.hpp (online Real-ESRGAN x4
// or paired). The export is a rass-samsr folder of method resshift: the
// start folder's with the trained network. resshift.init random trains from
// scratch, as ResShift's configs do (ckpt_path ~), with the folder's
// autoencoder and schedule.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rass/model/samsr_model.hpp"
#include "rass/nn/iqa_lpips.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/sinsr_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo resshift_stage_info();

struct ResshiftSettings {
  std::string model;          // the rass-samsr folder to start from (its schedule, network, autoencoder)
  // model: the folder's network; random: ResShift's initialisation
  // (nn/resshift_init.hpp; the folder then needs no unet.safetensors).
  std::string init = "model";
  SinsrDataConfig data;
  double lpips_weight = 0;    // ResShift v3: 1 (with lpips_weights)
  std::string lpips_weights;  // lpips_vgg.safetensors (scripts/convert_iqa_lpips.py)
};
ResshiftSettings parse_resshift_settings(const nlohmann::ordered_json& stage_config);

// One batch: gt [B, 3, 4h, 4w], lq [B, 3, h, w] in [-1, 1]; z_y [B, 3, h, w];
// t [B] (long), noise [B, 3, h, w].
struct ResshiftInputs {
  torch::Tensor gt, lq, z_y, t, noise;
};
// The per-sample terms [B] with the graph through m.unet (lpips undefined when off).
struct ResshiftTerms {
  torch::Tensor mse, lpips, z_t;
};
ResshiftTerms resshift_terms(const model::SamsrModel& m, const ResshiftInputs& in, nn::LpipsImpl* lpips);

class ResshiftStage : public Stage {
 public:
  ResshiftStage(const ResshiftSettings& s, const StageEnv& env);
  std::string name() const override { return "resshift"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;
  model::SamsrModel& model() { return *model_; }

 private:
  ResshiftSettings s_;
  StageEnv env_;
  std::unique_ptr<model::SamsrModel> model_;  // float32; its network is trained, its autoencoder frozen
  nn::Lpips lpips_{nullptr};
  std::unique_ptr<SinsrData> data_;
  std::unique_ptr<DataOrder> order_;
};

}  // namespace rass::train
