// The DDPM noise schedule of SD 2.x (diffusers DDPMScheduler, "scaled_linear":
// betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2), computed in float32
// as the reference does, and the one-step x0 prediction OSEDiff/SCR use:
//   x0 = (z - sqrt(1 - a_t) eps) / sqrt(a_t).
#pragma once
#include <string>
#include <vector>

namespace rass::nn {

struct DdpmSchedule {
  std::vector<float> betas, alphas_cumprod;
  std::string prediction_type = "epsilon";
  float alpha_bar(int t) const { return alphas_cumprod.at(size_t(t)); }
};

// Larger schedules are refused as corrupt (SD uses 1000; this bounds the tables).
constexpr int kMaxTrainTimesteps = 1000000;
// beta_schedule "scaled_linear" or "linear"; steps in 1..kMaxTrainTimesteps and
// betas in [0, 1), else Error(bad_input).
DdpmSchedule make_ddpm_schedule(double beta_start = 0.00085, double beta_end = 0.012, int steps = 1000,
                                const std::string& beta_schedule = "scaled_linear");
// From a diffusers scheduler/scheduler_config.json. Throws Error(bad_input).
DdpmSchedule read_ddpm_schedule(const std::string& path);

}  // namespace rass::nn
