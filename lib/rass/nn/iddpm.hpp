// The sampler PixArt-alpha and DreamClear run (diffusion/iddpm.py with
// learn_sigma: improved DDPM's ancestral sampling with a learned variance
// range, respaced), as GaussianDiffusion.p_sample_loop computes it:
// - betas "linear": linspace(1e-4, 0.02) scaled by 1000 / T, float64;
// - respacing "N": space_timesteps' one section, step k at round(k (T-1)/(N-1))
//   (Python's round: ties to even), new betas 1 - a_k / a_prev;
// - each step i = N-1 .. 0: the model sees the original step; eps and v
//   (the model's second half) give x0 = sqrt(1/a) x - sqrt(1/a - 1) eps (no
//   clipping: DreamClear passes clip_denoised=False), the posterior mean,
//   log variance = (v+1)/2 log(beta) + (1 - (v+1)/2) log(posterior variance,
//   clipped), and x = mean + exp(log variance / 2) noise (no noise at i = 0).
// The coefficients are float64 tables used as float32 (_extract_into_tensor).
#pragma once
#include <string>
#include <vector>

#include <torch/types.h>

namespace rass::nn {

struct IddpmSchedule {
  std::vector<int64_t> timesteps;  // the original steps kept, ascending
  std::vector<double> betas, alphas_cumprod, alphas_cumprod_prev;
  std::vector<double> posterior_log_variance_clipped, posterior_mean_coef1, posterior_mean_coef2;
  std::vector<double> sqrt_recip_alphas_cumprod, sqrt_recipm1_alphas_cumprod;
  int64_t steps() const { return int64_t(timesteps.size()); }
};

// space_timesteps(train_steps, "steps") of one section.
std::vector<int64_t> iddpm_space_timesteps(int64_t train_steps, int64_t steps);

// Throws Error(usage) for steps outside 1..train_steps and Error(bad_input)
// for an unknown beta schedule ("linear" only; the model folder names it).
IddpmSchedule make_iddpm_schedule(int64_t train_steps, int64_t steps, const std::string& beta_schedule = "linear");

// One p_sample at respaced index i: x [B, C, ...], model_out [B, 2C, ...]
// (eps, variance values), noise like x (unused at i = 0).
torch::Tensor iddpm_p_sample(const IddpmSchedule& s, int64_t i, const torch::Tensor& x, const torch::Tensor& model_out,
                             const torch::Tensor& noise);

}  // namespace rass::nn
