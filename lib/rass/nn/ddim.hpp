// DDIM sampling steps as diffusers 0.25.1's DDIMScheduler computes them:
// the timestep list of set_timesteps (timestep_spacing "leading" with
// steps_offset, "trailing", "linspace"), and step() for prediction types
// epsilon, v_prediction and sample, with eta, clip_sample and
// set_alpha_to_one. Scalars are float32 0-d tensors as in the reference, so
// the arithmetic rounds the same way. thresholding is refused.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <torch/types.h>

#include "rass/nn/ddpm.hpp"

namespace rass::nn {

struct DdimConfig {
  DdpmSchedule schedule;                 // betas, alphas_cumprod, prediction_type
  std::string timestep_spacing = "leading";
  int64_t steps_offset = 0;              // DDIMScheduler's default; SD 2.1-base says 1
  bool set_alpha_to_one = true;          // DDIMScheduler's default; SD 2.1-base says false
  bool clip_sample = true;               // DDIMScheduler's default; SD 2.1-base says false
  double clip_sample_range = 1.0;
  int64_t num_train_timesteps() const { return int64_t(schedule.alphas_cumprod.size()); }
};

// From a diffusers scheduler_config.json (any scheduler class: the keys are
// read with DDIMScheduler's defaults, as DDIMScheduler.from_config does).
// Throws Error(bad_input) naming the file for thresholding true, an unknown
// timestep_spacing or prediction_type, or values of the wrong type.
DdimConfig read_ddim_config(const std::string& path);

// set_timesteps(steps): the descending timesteps. Error(usage) when steps is
// outside 1..num_train_timesteps.
std::vector<int64_t> ddim_timesteps(const DdimConfig& c, int64_t steps);

// One step from timestep t (of a schedule of `steps` inference steps):
// returns prev_sample. `noise` ([same shape as sample], N(0,1)) is used when
// eta > 0. model_output and sample are float32; the result is float32.
torch::Tensor ddim_step(const DdimConfig& c, int64_t steps, const torch::Tensor& model_output, int64_t t,
                        const torch::Tensor& sample, double eta, const torch::Tensor& noise = {});

}  // namespace rass::nn
