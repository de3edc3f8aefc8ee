#include "rass/nn/ddim.hpp"

#include <cmath>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"

namespace rass::nn {

DdimConfig read_ddim_config(const std::string& path) {
  DdimConfig c;
  c.schedule = read_ddpm_schedule(path);  // checks num_train_timesteps, betas
  const nlohmann::ordered_json j = read_found_json(path);
  try {
    auto flag = [&](const char* key, bool def) {
      if (!j.contains(key) || j[key].is_null()) return def;
      if (!j[key].is_boolean()) throw_bad_input(path, std::string(key) + " " + j[key].dump() + " is not true or false");
      return j[key].get<bool>();
    };
    if (j.contains("trained_betas") && !j["trained_betas"].is_null())
      throw_bad_input(path, "trained_betas is not supported (a beta_schedule is)");
    if (flag("thresholding", false))
      throw_bad_input(path, "thresholding true is not supported (dynamic thresholding is for pixel-space models; SD has none)");
    if (flag("rescale_betas_zero_snr", false)) throw_bad_input(path, "rescale_betas_zero_snr true is not supported");
    c.set_alpha_to_one = flag("set_alpha_to_one", true);
    c.clip_sample = flag("clip_sample", true);
    if (j.contains("clip_sample_range") && !j["clip_sample_range"].is_number())
      throw_bad_input(path, "clip_sample_range " + j["clip_sample_range"].dump() + " is not a number");
    c.clip_sample_range = j.value("clip_sample_range", 1.0);
    if (j.contains("steps_offset") && !j["steps_offset"].is_number_integer())
      throw_bad_input(path, "steps_offset " + j["steps_offset"].dump() + " is not an integer");
    c.steps_offset = j.value("steps_offset", int64_t(0));
    if (c.steps_offset < 0 || c.steps_offset >= c.num_train_timesteps())
      throw_bad_input(path, "steps_offset " + std::to_string(c.steps_offset) + " is outside 0.." +
                                std::to_string(c.num_train_timesteps() - 1));
    c.timestep_spacing = j.value("timestep_spacing", std::string("leading"));
    if (c.timestep_spacing != "leading" && c.timestep_spacing != "trailing" && c.timestep_spacing != "linspace")
      throw_bad_input(path, "timestep_spacing '" + c.timestep_spacing + "' is not supported (leading, trailing, linspace)");
    const std::string& pt = c.schedule.prediction_type;
    if (pt != "epsilon" && pt != "v_prediction" && pt != "sample")
      throw_bad_input(path, "prediction_type '" + pt + "' is not supported (epsilon, v_prediction, sample)");
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path, std::string("bad scheduler config: ") + e.what());
  }
  return c;
}

std::vector<int64_t> ddim_timesteps(const DdimConfig& c, int64_t steps) {
  const int64_t T = c.num_train_timesteps();
  if (steps < 1 || steps > T)
    throw_usage("--steps " + std::to_string(steps) + ": expected 1.." + std::to_string(T) +
                " (the scheduler's num_train_timesteps)");
  std::vector<int64_t> ts;
  if (c.timestep_spacing == "leading") {
    const int64_t ratio = T / steps;
    for (int64_t i = steps - 1; i >= 0; --i) ts.push_back(i * ratio + c.steps_offset);
  } else if (c.timestep_spacing == "trailing") {
    // np.round(np.arange(T, 0, -T/steps)) - 1, in float64 as numpy.
    const double ratio = double(T) / double(steps);
    for (int64_t i = 0;; ++i) {
      const double v = double(T) - double(i) * ratio;
      if (!(v > 0)) break;
      ts.push_back(int64_t(std::nearbyint(v)) - 1);
    }
  } else {
    // np.linspace(0, T-1, steps).round()[::-1]: numpy's linspace is start + i*step
    // (the last value set to stop exactly); round half to even.
    const double step = steps > 1 ? double(T - 1) / double(steps - 1) : 0.0;
    for (int64_t i = steps - 1; i >= 0; --i) {
      const double v = (i == steps - 1 && steps > 1) ? double(T - 1) : double(i) * step;
      ts.push_back(int64_t(std::nearbyint(v)));
    }
  }
  return ts;
}

torch::Tensor ddim_step(const DdimConfig& c, int64_t steps, const torch::Tensor& model_output, int64_t t,
                        const torch::Tensor& sample, double eta, const torch::Tensor& noise) {
  const int64_t T = c.num_train_timesteps();
  if (t < 0 || t >= T) throw_runtime("DDIM timestep " + std::to_string(t) + " is outside the schedule");
  // diffusers uses T // steps as the stride whatever the spacing.
  const int64_t prev = t - T / steps;
  const auto opt = torch::TensorOptions().dtype(torch::kFloat).device(sample.device());
  const torch::Tensor a_t = torch::tensor(c.schedule.alpha_bar(int(t)), opt);
  const float final_ac = c.set_alpha_to_one ? 1.0f : c.schedule.alpha_bar(0);
  const torch::Tensor a_prev = torch::tensor(prev >= 0 ? c.schedule.alpha_bar(int(prev)) : final_ac, opt);
  const torch::Tensor b_t = 1 - a_t;
  torch::Tensor x0, eps;
  const std::string& pt = c.schedule.prediction_type;
  if (pt == "epsilon") {
    x0 = (sample - b_t.pow(0.5) * model_output) / a_t.pow(0.5);
    eps = model_output;
  } else if (pt == "sample") {
    x0 = model_output;
    eps = (sample - a_t.pow(0.5) * x0) / b_t.pow(0.5);
  } else {  // v_prediction
    x0 = a_t.pow(0.5) * sample - b_t.pow(0.5) * model_output;
    eps = a_t.pow(0.5) * model_output + b_t.pow(0.5) * sample;
  }
  if (c.clip_sample) x0 = x0.clamp(-c.clip_sample_range, c.clip_sample_range);
  // _get_variance
  const torch::Tensor b_prev = 1 - a_prev;
  const torch::Tensor variance = (b_prev / b_t) * (1 - a_t / a_prev);
  const torch::Tensor std_dev = eta * variance.pow(0.5);
  const torch::Tensor direction = (1 - a_prev - std_dev.pow(2)).pow(0.5) * eps;
  torch::Tensor prev_sample = a_prev.pow(0.5) * x0 + direction;
  if (eta > 0) {
    if (!noise.defined() || noise.sizes() != sample.sizes())
      throw_runtime("DDIM step with eta > 0 needs noise of the sample's shape");
    prev_sample = prev_sample + std_dev * noise;
  }
  return prev_sample;
}

}  // namespace rass::nn
