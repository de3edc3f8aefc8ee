// scripts/convert_osediff.py's output loaded with lora_io reproduces what
// diffusers + peft compute with the original OSEDiff-structured checkpoint
// (three UNet adapters active together at PEFT's default alpha 8, conv_in
// fully trained, a VAE encoder adapter), unmerged and merged. Fixture:
// tests/nn/make_osediff_pkl_fixture.py (tests/fixtures/nn/osediff_pkl/).
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <algorithm>

#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"
#include "rass/nn/vae.hpp"

using namespace rass;

namespace {

const std::string kNn = std::string(RASS_FIXTURES) + "/nn";
const std::string kDir = kNn + "/osediff_pkl";

torch::Tensor get(const SafeTensorsFile& f, const char* name) {
  const TensorView* v = f.find(name);
  REQUIRE_MESSAGE(v, "fixture lacks ", name);
  return model::to_tensor(*v, f.path());
}

double max_abs(const torch::Tensor& a, const torch::Tensor& b) {
  REQUIRE(a.sizes() == b.sizes());
  return (a - b).abs().max().item<double>();
}

// The converted file as rass-restore / rass-model load it (no options: the
// alpha must come from the file's own metadata).
model::LoraLoadReport load(torch::nn::Module& m, const std::string& file) {
  auto f = SafeTensorsFile::open(file);
  model::LoraLoadOptions opt;
  model::detect_lora_layout(*f, opt);
  return model::load_lora(m, *f, opt);
}

}  // namespace

TEST_CASE("converted OSEDiff UNet LoRA reproduces diffusers + peft with three adapters (unmerged and merged)") {
  torch::NoGradGuard ng;
  nn::UNet2DCondition unet(model::read_unet_config(kNn + "/unet_tiny/config.json"));
  model::load_component(*unet, kNn + "/unet_tiny");
  unet->eval();
  const model::LoraLoadReport rep = load(*unet, kDir + "/osediff_tiny.unet.safetensors");
  CHECK(rep.unmatched.empty());
  CHECK_FALSE(rep.alpha_guessed);
  // The fixture's target counts (make_osediff_pkl_fixture.py prints them).
  CHECK(rep.adapters.at("default_encoder") == 19);
  CHECK(rep.adapters.at("default_decoder") == 38);
  CHECK(rep.adapters.at("default_others") == 16);
  std::vector<std::string> full = rep.full_weights;
  std::sort(full.begin(), full.end());
  CHECK(full == std::vector<std::string>{"conv_in.bias", "conv_in.weight"});
  for (auto& [path, layer] : nn::lora_layers(*unet))
    for (auto& [name, a] : layer->adapters) CHECK(a.alpha / a.rank == doctest::Approx(2.0));

  auto io = SafeTensorsFile::open(kNn + "/unet_tiny_io.safetensors");
  auto ref = SafeTensorsFile::open(kDir + "/ref_io.safetensors");
  const torch::Tensor x = get(*io, "sample"), t = get(*io, "timesteps"), ctx = get(*io, "context");
  const torch::Tensor want = get(*ref, "unet_out");
  const double err = max_abs(unet->forward(x, t, ctx), want);
  MESSAGE("unmerged max abs error ", err);
  CHECK(err < TOL_LORA_OSEDIFF);
  for (const char* a : {"default_encoder", "default_decoder", "default_others"}) nn::merge_lora(*unet, a);
  const double merged = max_abs(unet->forward(x, t, ctx), want);
  MESSAGE("merged max abs error ", merged);
  CHECK(merged < TOL_LORA_OSEDIFF);
}

TEST_CASE("converted OSEDiff VAE encoder LoRA reproduces diffusers + peft (encoder mean)") {
  torch::NoGradGuard ng;
  nn::AutoencoderKL vae(model::read_vae_config(kNn + "/vae_tiny/config.json"));
  model::load_component(*vae, kNn + "/vae_tiny");
  vae->eval();
  const model::LoraLoadReport rep = load(*vae, kDir + "/osediff_tiny.vae.safetensors");
  CHECK(rep.unmatched.empty());
  CHECK(rep.full_weights.empty());
  CHECK(rep.adapters.at("default_encoder") == 26);
  auto io = SafeTensorsFile::open(kNn + "/vae_tiny_io.safetensors");
  auto ref = SafeTensorsFile::open(kDir + "/ref_io.safetensors");
  const torch::Tensor want = get(*ref, "vae_mean");
  const double err = max_abs(vae->encode(get(*io, "x")).mean, want);
  MESSAGE("VAE encoder mean max abs error ", err);
  CHECK(err < TOL_VAE_ENC);
  nn::merge_lora(*vae, "default_encoder");
  CHECK(max_abs(vae->encode(get(*io, "x")).mean, want) < TOL_VAE_ENC);
}
