// Stage 1 of RASS, rass-train scr (seed 000 section 3.2): LoRA on the UNet of
// a diffusers SD 2.x folder trained for one-step restoration with
//   L = w_mse MSE(x_hat, x_hq) + w_lpips LPIPS-VGG(x_hat, x_hq)
//       + lambda_region L_region + lambda_pixel L_pixel     (scl_loss.hpp)
// where x_hat = D(x0(UNet(z_L, t, c_T))) (clamped to [-1, 1], as OSEDiff
// trains), z_L a sample of the frozen VAE encoder's latent distribution of
// the online-degraded LQ crop (scr_data.hpp), c_T the frozen text encoder's
// last hidden state of the pack's prompt.
//
// LoRA as OSEDiff's initialize_unet: rank 4, PEFT's default alpha 8 (OSEDiff
// never sets lora_alpha), gaussian init (A ~ N(0, 1/r^2), B = 0), targets =
// layers whose "<path>.weight" contains one of the target patterns (not
// "bias"/"norm"), in three adapters: default_encoder (down_blocks, conv_in),
// default_decoder (up_blocks, conv_out), default_others (the rest: the mid
// block). conv_in's own weight and bias are trained too. The VAE and the text
// encoder are frozen; the decoder stays in the graph so the pixel losses
// reach the LoRA.
//
// The one-step form (REFERENCE.md 3, "not settled"): settings timestep and
// formula ("residual": x0 = z - eps; "ddpm": x0 = (z - sqrt(1-a_t) eps) /
// sqrt(a_t), clamped as rass-restore does when the scheduler's clip_sample is
// true). Default: the paper's, t = 1 and residual. Both are recorded in the
// exported folder's rass.json, so the model is always run in its own form.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rass/train/scr_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo scr_stage_info();

// The loss and its terms (unweighted, as logged).
struct ScrLoss {
  torch::Tensor loss, mse, lpips, region, pixel;  // scalars; lpips undefined without LPIPS
  int64_t scl_maps = 0;
};

class ScrStage : public Stage {
 public:
  ScrStage(const nlohmann::ordered_json& settings, const StageEnv& env);
  ~ScrStage() override;
  std::string name() const override { return "scr"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;

  // The samples of one step (what compute_loss builds from the data).
  std::vector<ScrSample> make_samples(const StepContext& ctx) const;
  // Forward and loss on given samples; `vae_noise[b]` ([4, h, w]) replaces
  // sample b's keyed latent draw when given (the gradient fixture's hook).
  ScrLoss forward_loss(const std::vector<ScrSample>& samples, const std::vector<torch::Tensor>& vae_noise = {});
  // Every trainable tensor by name (the LoRA parameters in PEFT's in-model
  // names, "conv_in.weight", "conv_in.bias").
  std::vector<std::pair<std::string, torch::Tensor>> trainable() const;
  // The LoRA layers of each adapter group (default_encoder, ...).
  std::map<std::string, std::vector<std::string>> adapter_layers() const;
  const ScrData& data() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rass::train
