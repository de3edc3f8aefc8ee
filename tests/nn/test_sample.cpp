// rass-model sample's DDIM sampler against diffusers 0.25.1
// (tests/nn/make_sample_fixture.py: StableDiffusionPipeline + DDIMScheduler on
// the tiny SD folder with given initial latents and eta noise): the latents
// after every step and the final 8-bit image; the timestep lists of SD
// 2.1-base's scheduler config; the keyed generator's properties.
#include "torch_doctest.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/sample.hpp"
#include "rass/nn/ddim.hpp"

using namespace rass;
using namespace rass::model;

static const std::string kNn = std::string(RASS_FIXTURES) + "/nn";

// Measured on LibTorch 1.13 CPU against torch 2.1.2 (the test prints them):
// latents 2.9e-5 (cfg, guidance 7.5, latent std 9.2 with random weights),
// 1.2e-5 (eta), 7e-7 (v_prediction, no guidance); 8-bit images 0.011% of
// values one level off (rounding ties), never more.
constexpr double TOL_SAMPLE_LATENT = 1e-4;     // |latents - ref| max, any step
constexpr double TOL_SAMPLE_OFF_BY_ONE = 0.01; // share of 8-bit values one level off (never more)

static const SampleModel& tiny() {
  static std::unique_ptr<SampleModel> m;
  if (!m) m = std::make_unique<SampleModel>(load_sample_model(kNn + "/sd_tiny", "cpu", "fp32"));
  return *m;
}

TEST_CASE("DDIM timesteps of SD 2.1-base's scheduler config equal diffusers' set_timesteps (20 and 50 steps)") {
  const nn::DdimConfig c = nn::read_ddim_config(kNn + "/sd_tiny/scheduler/scheduler_config.json");
  CHECK(c.timestep_spacing == "leading");
  CHECK(c.steps_offset == 1);
  CHECK_FALSE(c.set_alpha_to_one);
  CHECK_FALSE(c.clip_sample);
  // Printed by make_sample_fixture.py (diffusers 0.25.1 DDIMScheduler.set_timesteps).
  const std::vector<int64_t> t20 = {951, 901, 851, 801, 751, 701, 651, 601, 551, 501,
                                    451, 401, 351, 301, 251, 201, 151, 101, 51,  1};
  std::vector<int64_t> t50;
  for (int64_t t = 981; t >= 1; t -= 20) t50.push_back(t);
  CHECK(nn::ddim_timesteps(c, 20) == t20);
  CHECK(nn::ddim_timesteps(c, 50) == t50);
  // And the fixture's own record of them.
  auto ref = SafeTensorsFile::open(kNn + "/sample_ref.safetensors");
  const auto ts = nlohmann::json::parse(ref->metadata().at("timesteps"));
  CHECK(ts["20"].get<std::vector<int64_t>>() == t20);
  CHECK(ts["50"].get<std::vector<int64_t>>() == t50);
  CHECK_THROWS_AS(nn::ddim_timesteps(c, 0), Error);
  CHECK_THROWS_AS(nn::ddim_timesteps(c, 1001), Error);
}

TEST_CASE("DDIM trailing and linspace spacings (hand-worked from numpy's formulas)") {
  nn::DdimConfig c = nn::read_ddim_config(kNn + "/sd_tiny/scheduler/scheduler_config.json");
  c.timestep_spacing = "trailing";  // round(arange(1000, 0, -1000/3)) - 1 = 1000, 666.67, 333.33 -> 999, 666, 332
  CHECK(nn::ddim_timesteps(c, 3) == std::vector<int64_t>{999, 666, 332});
  c.timestep_spacing = "linspace";  // linspace(0, 999, 4).round()[::-1] = 999, 666, 333, 0
  CHECK(nn::ddim_timesteps(c, 4) == std::vector<int64_t>{999, 666, 333, 0});
}

TEST_CASE("sampling equals diffusers' StableDiffusionPipeline + DDIMScheduler step by step (cfg, eta, v_prediction)") {
  auto ref = SafeTensorsFile::open(kNn + "/sample_ref.safetensors");
  auto get = [&](const std::string& n) {
    const TensorView* v = ref->find(n);
    REQUIRE(v != nullptr);
    return to_tensor(*v, ref->path());
  };
  const auto cases = nlohmann::json::parse(ref->metadata().at("cases"));
  REQUIRE(cases.size() == 3);
  for (const auto& c : cases) {
    const std::string name = c["name"];
    CAPTURE(name);
    SampleModel m = tiny();
    if (c.contains("scheduler")) {
      // The case's scheduler config, read by the same reader as a folder's.
      char path[] = "/tmp/rass-sample-sched-XXXXXX";
      const int fd = mkstemp(path);
      REQUIRE(fd >= 0);
      close(fd);
      std::ofstream(path) << c["scheduler"].dump();
      m.scheduler = nn::read_ddim_config(path);
      std::remove(path);
    }
    SampleParams p;
    p.prompt = c["prompt"];
    p.negative_prompt = c["negative_prompt"];
    p.steps = c["steps"];
    p.guidance = c["guidance"];
    p.eta = c["eta"];
    p.width = c["width"];
    p.height = c["height"];
    p.initial_latents = get(name + ".init");
    if (p.eta > 0) {
      const torch::Tensor nz = get(name + ".noise");
      for (int64_t i = 0; i < nz.size(0); ++i) p.step_noise.push_back(nz[i]);
    }
    const torch::Tensor want = get(name + ".latents");
    REQUIRE(want.size(0) == p.steps);
    double worst = 0;
    int64_t seen = 0;
    p.on_step = [&](int64_t i, const torch::Tensor& lat) {
      worst = std::max(worst, (lat - want[i]).abs().max().item<double>());
      ++seen;
    };
    const SampleResult r = sample_image(m, p, 0);
    CHECK(seen == p.steps);
    const torch::Tensor out = get(name + ".out");
    REQUIRE(out.sizes() == torch::IntArrayRef({p.height, p.width, 3}));
    const torch::Tensor img =
        torch::from_blob(const_cast<uint8_t*>(r.image.u8()), {r.image.height, r.image.width, 3}, torch::kUInt8).to(torch::kInt);
    const torch::Tensor diff = (img - out.to(torch::kInt)).abs();
    const double off = diff.gt(0).to(torch::kFloat).mean().item<double>();
    MESSAGE(name << ": max |latents - ref| over " << p.steps << " steps " << worst << "; 8-bit values off by one " << off
                 << ", largest difference " << diff.max().item<int>() << "; latent std " << r.latents.std().item<double>());
    CHECK(worst < TOL_SAMPLE_LATENT);
    CHECK(diff.max().item<int>() <= 1);
    CHECK(off < TOL_SAMPLE_OFF_BY_ONE);
  }
}

TEST_CASE("image i depends on (seed, i) only; other seeds differ; guidance <= 1 runs the prompt alone") {
  const SampleModel& m = tiny();
  SampleParams p;
  p.prompt = "a red car";
  p.steps = 3;
  p.width = p.height = 16;
  const SampleResult a0 = sample_image(m, p, 0), a1 = sample_image(m, p, 1), again = sample_image(m, p, 0);
  CHECK(torch::equal(a0.latents, again.latents));
  CHECK_FALSE(torch::equal(a0.latents, a1.latents));
  p.seed = 1;
  CHECK_FALSE(torch::equal(sample_image(m, p, 0).latents, a0.latents));
  p.width = 12;  // not a multiple of 8
  CHECK_THROWS_AS(sample_image(m, p, 0), Error);
}

TEST_CASE("tile_grid places image k at row k / cols, column k % cols; empty cells black") {
  std::vector<Image> ims;
  for (int k = 0; k < 3; ++k) {
    Image im(2, 1, 3);
    std::fill(im.data.begin(), im.data.end(), uint8_t(10 * (k + 1)));
    ims.push_back(im);
  }
  const Image g = tile_grid(ims, 2);
  REQUIRE(g.width == 4);
  REQUIRE(g.height == 2);
  auto at = [&](int x, int y) { return g.u8()[(size_t(y) * 4 + size_t(x)) * 3]; };
  CHECK(at(0, 0) == 10);
  CHECK(at(2, 0) == 20);
  CHECK(at(0, 1) == 30);
  CHECK(at(2, 1) == 0);
}
