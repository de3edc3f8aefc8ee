// rass-train sinsr: SinSR's one-step distillation of a ResShift teacher
// (seed 002's base; wyf0912/SinSR, training_losses_distill), and SAMSR's
// variant (noise "sam": Liu-Zihang/SAMSR), both with their released switches
// (learn_xT, finetune_use_gt 1, the semantic loss off).
//
// Per sample, in the VQ-f4 latent (rass-samsr's model folders, samsr_model.hpp):
//   z_y = E(bicubic x4 of the LQ crop), z_gt = E(HQ crop), both without gradient;
//   noise: N(0, 1) (SinSR), or SAMSR's: one N(0, 1) per SAM mask of z_y
//     averaged where they overlap, standardised, with the weight W;
//   the teacher's x_0: ResShift's deterministic DDIM over all T steps from
//     x_T = z_y + kappa sqrt(eta_T) noise (always the unmodified prior):
//     x_{t-1} = k x_0 + m x_t + j z_y, m = sqrt(eta_{t-1} / eta_t),
//     j = eta_{t-1} - sqrt(eta_{t-1} eta_t), k = 1 - eta_{t-1} + sqrt(eta_{t-1} eta_t) - m;
//   the student's start z_t: that x_T (SinSR); SAMSR's weighted prior
//     z_y + kappa (1 - W/5) sqrt(eta_T) (1 + W/5) noise;
//   with s = sqrt(eta_T kappa^2 + 1) (the network's input scale at T-1) and
//   f(x, t) the student on x / s at step index t:
//   mse    = mean (z_teacher - f(z_t, T-1))^2                  distillation
//   mse_xT = mean (z_t - f(z_teacher, 0))^2                    learn_xT: the inverse map
//   mse_gt = mean (z_gt - f(sg[f(z_gt, 0)], T-1))^2            finetune_use_gt: the HQ
//     latent through the inverse map (no gradient) and back
//   loss = mean over samples of distill_weight mse + xT_weight mse_xT + gt_weight mse_gt.
//
// Loop defaults as released: AdamW lr 5e-5, weight decay 0, linear warmup
// from 0 over 5000 steps (SinSR; SAMSR's config has 50000), constant after,
// no clipping, batch 64, EMA of the weights at rate 0.999 (the export holds
// the EMA weights).
// The export is a rass-samsr folder: the teacher's with the student's
// network and method sinsr (or samsr, with the SAM folder as sam/).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rass/model/samsr_model.hpp"
#include "rass/train/data_order.hpp"
#include "rass/train/sinsr_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo sinsr_stage_info();

struct SinsrSettings {
  std::string teacher;       // rass-samsr folder of the ResShift teacher (its chain: the folder's steps)
  std::string student;       // "" = start from the teacher's network (as released)
  std::string noise = "gaussian";  // gaussian (SinSR) | sam (SAMSR)
  std::string sam;           // noise sam: SAM ViT-B folder ("" = <teacher>/sam)
  SinsrDataConfig data;
  double distill_weight = 1, xT_weight = 1, gt_weight = 1;
};
SinsrSettings parse_sinsr_settings(const nlohmann::ordered_json& stage_config);

// One batch's inputs (all [B, ...] on the models' device): gt [B, 3, 4h, 4w]
// and lq [B, 3, h, w] in [-1, 1], z_y [B, 3, h, w], noise [B, 3, h, w], and
// SAMSR's W [B, 1, h, w] (undefined for SinSR).
struct SinsrInputs {
  torch::Tensor gt, lq, z_y, noise, weight;
};
// The per-sample terms [B] (undefined when its weight is 0), with the
// student's graph; z_t and z_teacher for tests.
struct SinsrTerms {
  torch::Tensor mse, mse_xT, mse_gt, z_t, z_teacher;
};
SinsrTerms sinsr_terms(nn::ResShiftUNetImpl& student, const model::SamsrModel& teacher, const SinsrInputs& in,
                       const SinsrSettings& s);

class SinsrStage : public Stage {
 public:
  SinsrStage(const SinsrSettings& s, const StageEnv& env);
  std::string name() const override { return "sinsr"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;
  nn::ResShiftUNetImpl& student() { return *student_; }
  const model::SamsrModel& teacher() const { return *teacher_; }

 private:
  SinsrSettings s_;
  StageEnv env_;
  std::string sam_dir_;
  std::unique_ptr<model::SamsrModel> teacher_;
  nn::ResShiftUNet student_{nullptr};
  std::unique_ptr<SinsrData> data_;
  std::unique_ptr<DataOrder> order_;
};

}  // namespace rass::train
