#include "rass/nn/iddpm.hpp"

#include <cmath>

#include "rass/core/error.hpp"

namespace rass::nn {

std::vector<int64_t> iddpm_space_timesteps(int64_t T, int64_t n) {
  if (n < 1 || n > T)
    throw_usage("--steps " + std::to_string(n) + ": the model's diffusion has " + std::to_string(T) +
                " training steps (1.." + std::to_string(T) + " allowed)");
  const double stride = n <= 1 ? 1.0 : double(T - 1) / double(n - 1);
  std::vector<int64_t> out;
  double cur = 0.0;
  // nearbyint in the default rounding mode (no tool changes it): halves to even, as Python's round().
  for (int64_t k = 0; k < n; ++k, cur += stride) out.push_back(int64_t(std::nearbyint(cur)));
  return out;
}

IddpmSchedule make_iddpm_schedule(int64_t T, int64_t n, const std::string& beta_schedule) {
  if (beta_schedule != "linear")
    throw_bad_input("diffusion.beta_schedule", "is '" + beta_schedule + "'; only \"linear\" (PixArt's) is supported");
  if (T < 2 || T > 100000) throw_bad_input("diffusion.train_steps", "must be in 2..100000");
  const double scale = 1000.0 / double(T), b0 = scale * 0.0001, b1 = scale * 0.02;
  std::vector<double> base_ac(static_cast<size_t>(T));
  double ac = 1.0;
  for (int64_t i = 0; i < T; ++i) {
    // np.linspace(b0, b1, T): b0 + i * step, the last exactly b1.
    const double beta = i == T - 1 ? b1 : b0 + double(i) * ((b1 - b0) / double(T - 1));
    ac *= 1.0 - beta;
    base_ac[size_t(i)] = ac;
  }
  IddpmSchedule s;
  s.timesteps = iddpm_space_timesteps(T, n);
  double last = 1.0;
  for (int64_t t : s.timesteps) {
    s.betas.push_back(1.0 - base_ac[size_t(t)] / last);
    last = base_ac[size_t(t)];
  }
  ac = 1.0;
  for (double b : s.betas) {
    s.alphas_cumprod_prev.push_back(ac);
    ac *= 1.0 - b;
    s.alphas_cumprod.push_back(ac);
  }
  std::vector<double> post_var;
  for (size_t i = 0; i < s.betas.size(); ++i) {
    const double b = s.betas[i], a = s.alphas_cumprod[i], ap = s.alphas_cumprod_prev[i];
    post_var.push_back(b * (1.0 - ap) / (1.0 - a));
    s.posterior_mean_coef1.push_back(b * std::sqrt(ap) / (1.0 - a));
    s.posterior_mean_coef2.push_back((1.0 - ap) * std::sqrt(1.0 - b) / (1.0 - a));
    s.sqrt_recip_alphas_cumprod.push_back(std::sqrt(1.0 / a));
    s.sqrt_recipm1_alphas_cumprod.push_back(std::sqrt(1.0 / a - 1.0));
  }
  for (size_t i = 0; i < post_var.size(); ++i)
    s.posterior_log_variance_clipped.push_back(std::log(i == 0 && post_var.size() > 1 ? post_var[1] : post_var[i]));
  return s;
}

torch::Tensor iddpm_p_sample(const IddpmSchedule& s, int64_t i, const torch::Tensor& x, const torch::Tensor& model_out,
                             const torch::Tensor& noise) {
  const size_t k = size_t(i);
  const int64_t C = x.size(1);
  const torch::Tensor xf = x.to(torch::kFloat), out = model_out.to(torch::kFloat);
  const torch::Tensor eps = out.narrow(1, 0, C), v = out.narrow(1, C, C);
  auto f = [](double d) { return double(float(d)); };  // a float64 table read as float32
  const torch::Tensor x0 = f(s.sqrt_recip_alphas_cumprod[k]) * xf - f(s.sqrt_recipm1_alphas_cumprod[k]) * eps;
  const torch::Tensor mean = f(s.posterior_mean_coef1[k]) * x0 + f(s.posterior_mean_coef2[k]) * xf;
  if (i == 0) return mean;
  const torch::Tensor frac = (v + 1) / 2;
  const torch::Tensor log_var = frac * f(std::log(s.betas[k])) + (1 - frac) * f(s.posterior_log_variance_clipped[k]);
  return mean + torch::exp(0.5 * log_var) * noise.to(torch::kFloat);
}

}  // namespace rass::nn
