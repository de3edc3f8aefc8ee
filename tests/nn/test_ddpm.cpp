// The SD 2.x DDPM schedule against diffusers' DDPMScheduler (fixture from
// make_ddpm_fixture.py) and the values REFERENCE.md quotes.
#include "torch_doctest.hpp"

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/nn/ddpm.hpp"

using namespace rass;

TEST_CASE("scaled_linear alphas_cumprod equal diffusers (float32)") {
  nn::DdpmSchedule s = nn::make_ddpm_schedule();
  std::ifstream f(std::string(RASS_FIXTURES) + "/nn/ddpm_sd2.json");
  REQUIRE(f.good());
  const auto g = nlohmann::json::parse(f);
  REQUIRE(g["alphas_cumprod"].size() == 1000);
  double worst = 0;
  for (size_t t = 0; t < 1000; ++t) {
    worst = std::max(worst, std::fabs(double(s.alphas_cumprod[t]) - g["alphas_cumprod"][t].get<double>()));
    worst = std::max(worst, std::fabs(double(s.betas[t]) - g["betas"][t].get<double>()));
  }
  CHECK(worst < 1e-7);
  // REFERENCE.md 2: alpha_bar_999 ~ 0.004660, sqrt ~ 0.06826, sqrt(1 - .) ~ 0.99767.
  CHECK(s.alpha_bar(999) == doctest::Approx(0.004660).epsilon(1e-3));
  CHECK(std::sqrt(s.alpha_bar(999)) == doctest::Approx(0.06826).epsilon(1e-3));
  CHECK(std::sqrt(1 - s.alpha_bar(999)) == doctest::Approx(0.99767).epsilon(1e-5));
  CHECK_THROWS(nn::make_ddpm_schedule(0.1, 0.2, 10, "cosine"));
}
