#include "rass/nn/ddpm.hpp"

#include <cmath>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/found_file.hpp"
#include "rass/core/json_file.hpp"

namespace rass::nn {

// torch.linspace in float32: the first half steps up from start, the second
// half steps down from end (ATen's linspace kernel), so both ends are exact.
static std::vector<float> linspace_f32(float start, float end, int steps) {
  std::vector<float> v(static_cast<size_t>(steps));
  if (steps == 1) return {start};
  const float step = (end - start) / float(steps - 1);
  const int half = steps / 2;
  for (int i = 0; i < steps; ++i) v[size_t(i)] = i < half ? start + step * float(i) : end - step * float(steps - 1 - i);
  return v;
}

DdpmSchedule make_ddpm_schedule(double beta_start, double beta_end, int steps, const std::string& kind) {
  DdpmSchedule s;
  // The schedule must give 0 < alpha_bar <= 1 at every step (the formulas take its square roots).
  if (steps < 1 || steps > kMaxTrainTimesteps)
    throw Error(ExitCode::bad_input, "num_train_timesteps " + std::to_string(steps) + " is outside 1.." +
                                         std::to_string(kMaxTrainTimesteps));
  for (const auto& [key, b] : {std::pair<const char*, double>{"beta_start", beta_start}, {"beta_end", beta_end}})
    if (!(b >= 0 && b < 1)) throw Error(ExitCode::bad_input, std::string(key) + " " + std::to_string(b) + " is outside [0, 1)");
  if (kind == "scaled_linear") {
    s.betas = linspace_f32(float(std::sqrt(beta_start)), float(std::sqrt(beta_end)), steps);
    for (float& b : s.betas) b = b * b;
  } else if (kind == "linear") {
    s.betas = linspace_f32(float(beta_start), float(beta_end), steps);
  } else {
    throw Error(ExitCode::bad_input, "beta_schedule '" + kind + "' is not supported (scaled_linear, linear)");
  }
  // torch.cumprod on CPU accumulates float32 in double (acc_type), storing float32.
  double prod = 1.0;
  for (float b : s.betas) {
    prod *= double(1.f - b);
    s.alphas_cumprod.push_back(float(prod));
  }
  return s;
}

DdpmSchedule read_ddpm_schedule(const std::string& path) {
  const nlohmann::ordered_json j = read_found_json(path);
  try {
    // A missing key takes DDPMScheduler's default (1000); a present one must be an integer.
    // (Errors here are wrapped with the path below.)
    if (j.contains("num_train_timesteps") && !j["num_train_timesteps"].is_number_integer())
      throw Error(ExitCode::bad_input, "num_train_timesteps " + j["num_train_timesteps"].dump() + " is not an integer");
    const int64_t steps = j.value("num_train_timesteps", int64_t(1000));
    if (steps < 1 || steps > kMaxTrainTimesteps)
      throw Error(ExitCode::bad_input, "num_train_timesteps " + std::to_string(steps) + " is outside 1.." +
                                           std::to_string(kMaxTrainTimesteps));
    for (const char* key : {"beta_start", "beta_end"})
      if (j.contains(key) && !j[key].is_number())
        throw Error(ExitCode::bad_input, std::string(key) + " " + j[key].dump() + " is not a number");
    DdpmSchedule s = make_ddpm_schedule(j.value("beta_start", 0.00085), j.value("beta_end", 0.012),
                                        int(steps),
                                        j.value("beta_schedule", std::string("scaled_linear")));
    s.prediction_type = j.value("prediction_type", std::string("epsilon"));
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(path, std::string("bad scheduler config: ") + e.what());
  } catch (const Error& e) {
    throw_bad_input(path, e.what());
  }
}

}  // namespace rass::nn
