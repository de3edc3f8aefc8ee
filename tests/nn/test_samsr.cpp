// SAMSR / SinSR / ResShift (seed 002) against the references: a tiny random
// UNetModelSwin and VQ autoencoder built from the reference modules and run
// through SAMSR's and ResShift's own diffusion code (fixtures from
// tests/nn/make_samsr_fixture.py), and the parts of SAMSR's noise worked by hand.
#include "torch_doctest.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/restore_size.hpp"
#include "rass/model/samsr_model.hpp"
#include "rass/nn/resshift_unet.hpp"

using namespace rass;

namespace {

const std::string kSamsrDir = std::string(RASS_FIXTURES) + "/nn";

torch::Tensor samsr_golden(const SafeTensorsFile& io, const std::string& k) {
  const TensorView* v = io.find(k);
  REQUIRE_MESSAGE(v != nullptr, k);
  return model::to_tensor(*v, io.path());
}

double samsr_err(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a.to(torch::kFloat).cpu() - b.to(torch::kFloat).cpu()).abs().max().item<double>();
}

double samsr_scale(const torch::Tensor& a) { return std::max(1e-6, a.abs().max().item<double>()); }

model::SamsrModel& tiny(const std::string& noise = "auto", int steps = 0) {
  static std::map<std::string, std::unique_ptr<model::SamsrModel>> cache;
  const std::string k = noise + std::to_string(steps);
  auto& m = cache[k];
  if (!m) {
    model::SamsrModelOptions o;
    o.dir = kSamsrDir + "/samsr_tiny";
    o.noise = noise;
    o.steps = steps;
    m = std::make_unique<model::SamsrModel>(o);
  }
  return *m;
}

}  // namespace

TEST_CASE("resshift schedule: SAMSR's exponential sqrt(eta) worked by hand") {
  model::SamsrFolderConfig c;  // the released configs/SamSR.yaml
  const std::vector<double> s = model::resshift_sqrt_etas(c);
  REQUIRE(s.size() == 15);
  // etas_start = min(0.04 / 2, 0.04, sqrt(0.001)) = 0.02; the last is etas_end.
  CHECK(s[0] == doctest::Approx(0.02).epsilon(1e-12));
  CHECK(s[14] == doctest::Approx(0.99).epsilon(1e-12));
  // t = 7: 0.02 * (0.99 / 0.02)^((7/14)^0.3).
  CHECK(s[7] == doctest::Approx(0.02 * std::pow(0.99 / 0.02, std::pow(0.5, 0.3))).epsilon(1e-12));
  // Respacing: int(15 / 4 * k).
  CHECK((model::resshift_respaced(15, 4) == std::vector<int64_t>{0, 3, 7, 11}));
  CHECK((model::resshift_respaced(15, 15).size() == 15));
  // The uncapped start (ResShift's current code) differs once min_noise_level / kappa > sqrt(0.001).
  c.min_noise_level = 0.2;
  c.cap_etas_start = false;
  CHECK(model::resshift_sqrt_etas(c)[0] == doctest::Approx(0.1));
  c.cap_etas_start = true;
  CHECK(model::resshift_sqrt_etas(c)[0] == doctest::Approx(std::sqrt(0.001)));
}

TEST_CASE("resshift swin: the shifted-window mask is the reference's row mask") {
  // 8x8 input, window 4, shift 2: the reference's slices label rows 0..3 as 6,
  // 4..5 as 7, 6..7 as 8, and each window's tokens read them through their column.
  const torch::Tensor m = nn::swin_shift_mask(8, 8, 4, 2);
  REQUIRE(m.sizes() == torch::IntArrayRef({4, 16, 16}));
  // Top windows: rows 0..3, every token's label 6: no masking.
  CHECK(m[0].abs().sum().item<double>() == 0);
  CHECK(m[1].abs().sum().item<double>() == 0);
  // Bottom-left window: rows 4..7; token i = r * 4 + c reads row 4 + c: labels 7, 7, 8, 8 by column.
  const auto label = [](int64_t i) { return (i % 4) < 2 ? 7 : 8; };
  for (int64_t i = 0; i < 16; ++i)
    for (int64_t j = 0; j < 16; ++j)
      CHECK(m[2][i][j].item<float>() == (label(i) == label(j) ? 0.0f : -100.0f));
  CHECK(samsr_err(m[3], m[2]) == 0);
}

TEST_CASE("samsr noise: weights and the averaged, standardised noise worked by hand") {
  // Two masks over a 2x3 latent, and the background (pixels no mask covers).
  const torch::Tensor a = torch::tensor({1.f, 1.f, 0.f, 0.f, 1.f, 0.f}).view({2, 3});
  const torch::Tensor b = torch::tensor({0.f, 1.f, 0.f, 0.f, 1.f, 1.f}).view({2, 3});
  const torch::Tensor bg = (1 - a) * (1 - b);
  const torch::Tensor masks = torch::stack({a, b, bg});
  torch::Generator g1 = at::make_generator<at::CPUGeneratorImpl>(5);
  const model::SamsrNoise n = model::samsr_noise_from_masks(masks, g1);
  // Counts 1 2 1 / 1 2 1 (every pixel in at least one mask): W = count / 2.
  const torch::Tensor w = torch::tensor({0.5f, 1.f, 0.5f, 0.5f, 1.f, 0.5f}).view({1, 1, 2, 3});
  CHECK(samsr_err(n.weight, w) < 1e-7);
  // The same draws by hand: one [3, 2, 3] per mask in order.
  torch::Generator g2 = at::make_generator<at::CPUGeneratorImpl>(5);
  std::vector<torch::Tensor> d;
  for (int i = 0; i < 3; ++i) d.push_back(at::randn({3, 2, 3}, g2, torch::TensorOptions().dtype(torch::kFloat)));
  const torch::Tensor avg = (d[0] * a + d[1] * b + d[2] * bg) / torch::tensor({1.f, 2.f, 1.f, 1.f, 2.f, 1.f}).view({2, 3});
  for (int c = 0; c < 3; ++c) {
    const torch::Tensor x = avg[c].flatten();
    const double mean = x.mean().item<double>();
    double ss = 0;
    for (int i = 0; i < 6; ++i) ss += std::pow(x[i].item<double>() - mean, 2);
    const double sd = std::sqrt(ss / 5);  // unbiased
    for (int i = 0; i < 6; ++i)
      CHECK(n.noise[0][c].flatten()[i].item<double>() == doctest::Approx((x[i].item<double>() - mean) / sd).epsilon(1e-5));
  }
}

TEST_CASE("samsr latent image: min-max over the latent, truncated, channels reversed") {
  // Channel 0 = 0, channel 1 = 1 (the max), channel 2 = -1 (the min) and one 0.5.
  torch::Tensor z = torch::zeros({3, 1, 2});
  z[1].fill_(1.0f);
  z[2].fill_(-1.0f);
  z[0][0][1] = 0.5f;
  const Image img = model::samsr_latent_image(z);
  REQUIRE(img.width == 2);
  REQUIRE(img.height == 1);
  // Pixel 0: channels (0, 1, -1) -> (127.49.., 254.99.., 0) truncated (127, 254, 0), reversed.
  const uint8_t* p = img.u8();
  CHECK(int(p[0]) == 0);
  CHECK(int(p[1]) == 254);
  CHECK(int(p[2]) == 127);
  // Pixel 1: channel 0 is 0.5 -> 1.5 / (2 + 1e-6) * 255 = 191.24.. -> 191, last after the reversal.
  CHECK(int(p[5]) == 191);
}

TEST_CASE("samsr tiny: latent, one step with SAMSR's weighted noise, decoded output equal the reference") {
  const auto io = SafeTensorsFile::open(kSamsrDir + "/samsr_io.safetensors");
  model::SamsrModel& m = tiny();
  c10::InferenceMode guard;
  const torch::Tensor y = samsr_golden(*io, "y");
  // The image file decodes to the reference's y.
  const Image lq = model::to_rgb8(read_image(kSamsrDir + "/samsr_lq.png"), "samsr_lq.png");
  torch::Tensor ly = torch::from_blob(const_cast<uint8_t*>(lq.u8()), {lq.height, lq.width, 3}, torch::kUInt8)
                         .permute({2, 0, 1}).to(torch::kFloat).div(255.0).unsqueeze(0);
  CHECK(samsr_err((ly - 0.5) / 0.5, y) < 1e-6);
  const torch::Tensor z = m.encode_lq(y);
  const torch::Tensor z_ref = samsr_golden(*io, "z_y");
  CHECK(samsr_err(z, z_ref) < 2e-5 * samsr_scale(z_ref));
  // W from the reference's masks.
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const model::SamsrNoise n = model::samsr_noise_from_masks(samsr_golden(*io, "masks"), gen);
  CHECK(samsr_err(n.weight, samsr_golden(*io, "weight")) < 1e-7);
  // With the reference's noise and W: the prediction and the decoded image.
  model::SamsrInjected inj;
  inj.noise = samsr_golden(*io, "noise");
  inj.weight = samsr_golden(*io, "weight");
  const torch::Tensor out = m.restore_tile(y, gen, nullptr, &inj);
  const torch::Tensor ref = samsr_golden(*io, "samsr_out");
  // The decoder's input is a codebook lookup: equal codes give equal images.
  const double err = samsr_err(out.clamp(-1, 1), ref);
  MESSAGE("SAMSR one step: max |out - ref| = " << err);
  CHECK(err < 1e-4);
}

TEST_CASE("samsr tiny: the UNet's prediction equals the reference (SAMSR and Gaussian one step)") {
  const auto io = SafeTensorsFile::open(kSamsrDir + "/samsr_io.safetensors");
  model::SamsrModel& m = tiny();
  c10::InferenceMode guard;
  const torch::Tensor y = samsr_golden(*io, "y"), z = samsr_golden(*io, "z_y");
  const double se = m.sqrt_etas[14], kappa = m.config.kappa;
  const torch::Tensor w = samsr_golden(*io, "weight") / 5.0;
  const torch::Tensor xt = z + ((1.0 - w) * float(kappa)) * ((1.0 + w) * float(se)) * samsr_golden(*io, "noise");
  CHECK(samsr_err(xt, samsr_golden(*io, "samsr_xt")) < 1e-5);
  const torch::Tensor t = torch::full({1}, int64_t(14), torch::kLong);
  const double sd = std::sqrt(se * se * kappa * kappa + 1);
  const torch::Tensor x0 = m.unet->forward(samsr_golden(*io, "samsr_xt") / sd, t, y);
  const torch::Tensor x0_ref = samsr_golden(*io, "samsr_x0");
  CHECK(samsr_err(x0, x0_ref) < 2e-5 * samsr_scale(x0_ref));
  const torch::Tensor g = samsr_golden(*io, "sinsr_noise");
  const torch::Tensor x0g = m.unet->forward((z + float(kappa * se) * g) / sd, t, y);
  CHECK(samsr_err(x0g, samsr_golden(*io, "sinsr_x0")) < 2e-5 * samsr_scale(x0_ref));
  // The decoder of the reference's prediction.
  CHECK(samsr_err(m.vq->decode(samsr_golden(*io, "sinsr_x0")).clamp(-1, 1), samsr_golden(*io, "sinsr_out")) < 1e-4);
}

TEST_CASE("samsr tiny: Gaussian one step (SinSR) and ResShift's respaced chain equal the reference") {
  const auto io = SafeTensorsFile::open(kSamsrDir + "/samsr_io.safetensors");
  c10::InferenceMode guard;
  const torch::Tensor y = samsr_golden(*io, "y");
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  {
    model::SamsrModel& m = tiny("gaussian", 1);
    model::SamsrInjected inj;
    inj.noise = samsr_golden(*io, "sinsr_noise");
    const double err = samsr_err(m.restore_tile(y, gen, nullptr, &inj).clamp(-1, 1), samsr_golden(*io, "sinsr_out"));
    MESSAGE("SinSR one step: max |out - ref| = " << err);
    CHECK(err < 1e-4);
  }
  {
    model::SamsrModel& m = tiny("gaussian", 4);
    model::SamsrInjected inj;
    inj.noise = samsr_golden(*io, "chain_noise_0");
    for (int k = 1; k <= 4; ++k) inj.chain.push_back(samsr_golden(*io, "chain_noise_" + std::to_string(k)));
    const double err = samsr_err(m.restore_tile(y, gen, nullptr, &inj).clamp(-1, 1), samsr_golden(*io, "chain_out"));
    MESSAGE("ResShift 4 steps: max |out - ref| = " << err);
    CHECK(err < 1e-4);
  }
}

TEST_CASE("samsr tiny: SAM's masks of a latent equal generate_masks_from_batch's") {
  const auto io = SafeTensorsFile::open(kSamsrDir + "/samsr_io.safetensors");
  model::SamsrModel& m = tiny();
  c10::InferenceMode guard;
  const torch::Tensor got = m.sam_masks(samsr_golden(*io, "sam_z"));
  const torch::Tensor ref = samsr_golden(*io, "sam_masks");
  REQUIRE(got.size(0) == ref.size(0));
  REQUIRE(got.size(0) > 2);  // masks besides the background: the path is exercised
  // Masks are logits > 0: a pixel whose logit is within rounding of 0 may differ.
  const double differ = (got - ref).abs().sum().item<double>();
  CHECK(differ <= double(ref.numel()) / 200);
}

TEST_CASE("samsr config: the folder's errors name the file") {
  model::SamsrModelOptions o;
  o.dir = kSamsrDir + "/sam_tiny";
  CHECK_THROWS_WITH_AS(model::SamsrModel{o}, doctest::Contains("no samsr.json"), Error);
  o.dir = kSamsrDir + "/samsr_tiny";
  o.steps = 4;
  CHECK_THROWS_WITH_AS(model::SamsrModel{o}, doctest::Contains("one step"), Error);  // SAM noise, several steps
  o.steps = 16;
  o.noise = "gaussian";
  CHECK_THROWS_WITH_AS(model::SamsrModel{o}, doctest::Contains("15 steps"), Error);
}

TEST_CASE("samsr tiny bf16: float32 where convert_to_fp16 leaves it, the prediction near fp32's") {
  const auto io = SafeTensorsFile::open(kSamsrDir + "/samsr_io.safetensors");
  model::SamsrModelOptions o;
  o.dir = kSamsrDir + "/samsr_tiny";
  o.dtype = "bf16";
  o.noise = "gaussian";
  model::SamsrModel m(o);
  CHECK((m.unet->time0->weight.scalar_type() == torch::kFloat));
  CHECK((m.unet->out_conv->weight.scalar_type() == torch::kFloat));
  CHECK((m.unet->out_norm->weight.scalar_type() == torch::kFloat));
  const auto& first = m.unet->input_blocks[1]->as<nn::ResShiftSequentialImpl>()->items[0].second;
  CHECK((first->as<nn::ResShiftResBlockImpl>()->in_conv->weight.scalar_type() == torch::kBFloat16));
  CHECK((first->as<nn::ResShiftResBlockImpl>()->in_norm->weight.scalar_type() == torch::kFloat));
  c10::InferenceMode guard;
  const torch::Tensor y = samsr_golden(*io, "y"), z = samsr_golden(*io, "z_y");
  const double se = m.sqrt_etas[14], kappa = m.config.kappa;
  const torch::Tensor x = (z + float(kappa * se) * samsr_golden(*io, "sinsr_noise")) / std::sqrt(se * se * kappa * kappa + 1);
  const torch::Tensor x0 = m.unet.ptr()->forward(x, torch::full({1}, int64_t(14), torch::kLong), y);
  CHECK((x0.scalar_type() == torch::kFloat));  // the head ran float32
  const torch::Tensor ref = samsr_golden(*io, "sinsr_x0");
  const double err = samsr_err(x0, ref);
  MESSAGE("bf16 prediction: max |x0 - ref| = " << err << " of " << samsr_scale(ref));
  CHECK(err < 0.05 * samsr_scale(ref));
}

TEST_CASE("samsr config: method resshift takes ResShift's uncapped start (its v3: 4 steps, min_noise_level 0.2)") {
  const std::string dir =
      std::filesystem::temp_directory_path().string() + "/rass-samsr-config-test-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  auto config = [&](const std::string& text) {
    std::ofstream(dir + "/samsr.json") << text;
    return model::read_samsr_config(dir);
  };
  const model::SamsrFolderConfig v3 =
      config(R"({"architecture": "resshift", "method": "resshift", "diffusion": {"steps": 4, "min_noise_level": 0.2}})");
  CHECK_FALSE(v3.cap_etas_start);
  CHECK(v3.default_steps() == 4);
  const std::vector<double> s = model::resshift_sqrt_etas(v3);
  CHECK(s[0] == doctest::Approx(0.1));  // min(0.2 / 2, 0.2)
  CHECK(s[3] == doctest::Approx(0.99));
  CHECK(config(R"({"architecture": "resshift", "method": "samsr"})").cap_etas_start);
  CHECK_FALSE(config(R"({"architecture": "resshift", "method": "resshift"})").cap_etas_start);
  CHECK(config(R"({"architecture": "resshift", "method": "resshift", "diffusion": {"cap_etas_start": true}})").cap_etas_start);
  std::filesystem::remove_all(dir);
}

TEST_CASE("samsr tiny: ResShift v3's 4-step schedule (uncapped start) equals ResShift's own chain") {
  const auto io = SafeTensorsFile::open(kSamsrDir + "/samsr_io.safetensors");
  // The tiny weights under a method-resshift samsr.json with v3's diffusion fields.
  const std::string dir =
      std::filesystem::temp_directory_path().string() + "/rass-samsr-v3-test-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  for (const char* f : {"unet.safetensors", "autoencoder.safetensors"})
    std::filesystem::create_symlink(kSamsrDir + "/samsr_tiny/" + f, dir + "/" + f);
  {
    std::ifstream in(kSamsrDir + "/samsr_tiny/samsr.json");
    nlohmann::json j;
    in >> j;
    j["method"] = "resshift";
    j["diffusion"] = {{"steps", 4}, {"kappa", 2.0}, {"min_noise_level", 0.2}};
    j.erase("sam");
    std::ofstream(dir + "/samsr.json") << j.dump();
  }
  model::SamsrModelOptions o;
  o.dir = dir;
  model::SamsrModel m(o);
  CHECK(m.steps == 4);
  CHECK_FALSE(m.sam_noise);
  const torch::Tensor ref_etas = samsr_golden(*io, "v3_sqrt_etas");
  for (int64_t t = 0; t < 4; ++t) CHECK(m.sqrt_etas[size_t(t)] == doctest::Approx(ref_etas[t].item<double>()).epsilon(1e-6));
  c10::InferenceMode guard;
  torch::Generator gen = at::make_generator<at::CPUGeneratorImpl>(1);
  model::SamsrInjected inj;
  inj.noise = samsr_golden(*io, "v3_noise_0");
  for (int k = 1; k <= 4; ++k) inj.chain.push_back(samsr_golden(*io, "v3_noise_" + std::to_string(k)));
  const double err = samsr_err(m.restore_tile(samsr_golden(*io, "y"), gen, nullptr, &inj).clamp(-1, 1),
                               samsr_golden(*io, "v3_out"));
  MESSAGE("ResShift v3 schedule, 4 steps: max |out - ref| = " << err);
  CHECK(err < 1e-4);
  std::filesystem::remove_all(dir);
}
