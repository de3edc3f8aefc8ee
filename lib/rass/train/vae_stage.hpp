// Pretraining the VAE, rass-train vae: every parameter of the AutoencoderKL
// of a diffusers folder's vae/ (e.g. `rass-model init --preset tiny`) on
// clean image crops (pretrain_data.hpp), with the loss of latent diffusion's
// LPIPSWithDiscriminator (ldm/modules/losses/contperceptual.py) without its
// GAN term and with its learned output log-variance fixed at 0:
//   per image: rec = sum over pixels of |x - x_hat| (loss l1) or
//              (x - x_hat)^2 (loss mse), + w_lpips * LPIPS(x, x_hat) * 3HW
//              (LDM adds the image's LPIPS to every pixel's term before the sum)
//              KL  = 0.5 sum(mu^2 + var - 1 - logvar) over the latent
//   loss = mean over the batch of rec + kl_weight * KL      (kl_weight 1e-6)
// x_hat = decode(z), z a sample of the posterior with a draw keyed by
// (seed, step, global sample) (LDM trains on samples; setting sample).
// No discriminator: SD's VAE had one (from 50k steps); the tiny world's VAE
// is trained for reconstruction only, so its outputs are blurrier.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rass/train/pretrain_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo vae_stage_info();

struct VaeLoss {
  torch::Tensor loss;      // the scalar differentiated
  torch::Tensor rec;       // per-pixel mean of the reconstruction term (l1 or mse), for the log
  torch::Tensor kl;        // per-image KL sum, batch mean
  torch::Tensor lpips;     // undefined without LPIPS
};

class VaeStage : public Stage {
 public:
  VaeStage(const nlohmann::ordered_json& settings, const StageEnv& env);
  ~VaeStage() override;
  std::string name() const override { return "vae"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;

  std::vector<PretrainSample> make_samples(const StepContext& ctx) const;
  // `vae_noise[b]` ([C, h, w]) replaces sample b's keyed posterior draw when
  // given (the gradient fixture's hook).
  VaeLoss forward_loss(const std::vector<PretrainSample>& samples, const std::vector<torch::Tensor>& vae_noise = {});
  std::vector<std::pair<std::string, torch::Tensor>> trainable() const;
  const PretrainData& data() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rass::train
