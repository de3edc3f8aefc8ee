// Pretraining the UNet, rass-train unet: every parameter of the UNet of a
// diffusers folder (its VAE and text encoder frozen) as an epsilon-predicting
// DDPM with text conditioning, as diffusers' train_text_to_image.py does:
//   z   = VAE posterior sample (keyed draw) * scaling_factor
//   t   ~ uniform in [0, num_train_timesteps)            (keyed)
//   eps ~ N(0, I)                                         (keyed)
//   z_t = sqrt(a_t) z + sqrt(1 - a_t) eps   (a_t: alphas_cumprod of the
//         folder's scheduler config, float32; DDPMScheduler.add_noise)
//   loss = MSE(UNet(z_t, t, c), eps), mean over all elements
// c is the frozen text encoder's last hidden state of the item's caption or
// tags (setting text), replaced by the empty prompt with probability
// cfg_dropout (keyed), so classifier-free guidance can be used at sampling.
// Every draw is keyed by (seed, step, global sample index) (stage.hpp).
// Only epsilon prediction: a scheduler config with another prediction_type
// is refused (bad input naming it), as every tool of rass runs epsilon UNets.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rass/train/pretrain_data.hpp"
#include "rass/train/stage.hpp"

namespace rass::train {

StageInfo unet_stage_info();

// The keyed draws of one sample.
struct UnetDraws {
  int64_t timestep = 0;
  torch::Tensor noise;       // [C, h, w] N(0, 1), float32
  torch::Tensor vae_noise;   // [C, h, w] the posterior sample's N(0, 1) draw
  bool drop_prompt = false;  // classifier-free dropout of the text
};
UnetDraws unet_draws(uint64_t seed, const std::string& draw, int64_t num_timesteps, double cfg_dropout,
                     const std::vector<int64_t>& latent_shape);

// DDPMScheduler.add_noise: sqrt(a) z + sqrt(1 - a) eps, a [B] per sample.
torch::Tensor add_noise(const torch::Tensor& z, const torch::Tensor& eps, const torch::Tensor& alpha_bar);

class UnetStage : public Stage {
 public:
  UnetStage(const nlohmann::ordered_json& settings, const StageEnv& env);
  ~UnetStage() override;
  std::string name() const override { return "unet"; }
  std::vector<ParamGroup> param_groups() override;
  StepLoss compute_loss(const StepContext& ctx) override;
  void export_model(const std::string& dir) override;

  std::vector<PretrainSample> make_samples(const StepContext& ctx) const;
  // The MSE of the samples; each sample's draws from unet_draws(seed, draw),
  // or `draws[b]` when given (the gradient fixture's hook).
  torch::Tensor forward_loss(const std::vector<PretrainSample>& samples, const std::vector<UnetDraws>& draws = {});
  std::vector<std::pair<std::string, torch::Tensor>> trainable() const;
  const PretrainData& data() const;
  // The prompt a sample is conditioned on ("" when dropped).
  std::string prompt_of(const PretrainSample& s) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace rass::train
