// UNet2DConditionModel against the reference (diffusers v0.25.1) on tiny
// random configs (fixtures from tests/nn/make_unet_fixture.py).
#include "torch_doctest.hpp"
#include "tolerances.hpp"


#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/unet.hpp"

using namespace rass;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

TEST_CASE("UNet forward equals diffusers to 6e-6 (fp32): linear and conv projections, odd sizes, batch 2") {
  torch::NoGradGuard no_grad;
  for (const char* name : {"unet_tiny", "unet_tiny_conv"}) {
    INFO(std::string(name));
    nn::UNetConfig cfg = model::read_unet_config(kDir + "/" + name + "/config.json");
    nn::UNet2DCondition unet(cfg);
    auto weights = SafeTensorsFile::open(kDir + "/" + name + "/diffusion_pytorch_model.safetensors");
    model::LoadReport rep = model::load_state_dict(*unet, *weights);
    CHECK(rep.loaded == weights->tensors().size());
    unet->eval();
    auto io = SafeTensorsFile::open(kDir + "/" + name + "_io.safetensors");
    auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
    unet->keep_up_block_outputs = true;
    torch::Tensor out = unet->forward(get("sample"), get("timesteps"), get("context"));
    torch::Tensor want = get("out");
    REQUIRE(out.sizes() == want.sizes());
    const double err = (out - want).abs().max().item<double>();
    MESSAGE(std::string(name), " max abs error ", err);
    CHECK(err < TOL_UNET);
    CHECK(unet->up_block_outputs.size() == cfg.block_out_channels.size());
  }
}

TEST_CASE("timestep embedding: flip_sin_to_cos puts cos first; t = 0 gives cos 1, sin 0") {
  torch::Tensor e = nn::timestep_embedding(torch::tensor({0.0f}), 8, true, 0);
  CHECK(e.sizes() == torch::IntArrayRef({1, 8}));
  for (int i = 0; i < 4; ++i) CHECK(e[0][i].item<float>() == doctest::Approx(1.0));
  for (int i = 4; i < 8; ++i) CHECK(e[0][i].item<float>() == doctest::Approx(0.0));
  // Frequency k is exp(-ln(10000) k / half): at t = 1 the second cos is cos(10000^(-1/4)).
  torch::Tensor f = nn::timestep_embedding(torch::tensor({1.0f}), 8, true, 0);
  CHECK(f[0][1].item<float>() == doctest::Approx(std::cos(std::pow(10000.0, -0.25))).epsilon(1e-6));
}

TEST_CASE("cross-attention probabilities can be captured per layer (SCL needs them)") {
  torch::NoGradGuard no_grad;
  nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  nn::UNet2DCondition unet(cfg);
  model::load_state_dict(*unet, *SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors"));
  unet->eval();
  std::vector<nn::AttentionImpl*> cross;
  for (const auto& m : unet->named_modules("", false))
    if (m.key().size() > 6 && m.key().compare(m.key().size() - 6, 6, ".attn2") == 0)
      cross.push_back(m.value()->as<nn::AttentionImpl>());
  REQUIRE(cross.size() == 4);  // 1 down + 1 mid + 2 up transformer blocks in unet_tiny
  for (auto* a : cross) a->capture = true;
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  torch::Tensor out = unet->forward(get("sample"), get("timesteps"), get("context"));
  CHECK((out - get("out")).abs().max().item<double>() < TOL_UNET);  // capture does not change the result
  for (auto* a : cross) {
    REQUIRE(a->captured.defined());
    CHECK(a->captured.size(2) == 5);  // keys = context tokens
    CHECK((a->captured.sum(-1) - 1).abs().max().item<double>() < 1e-5);
  }
}
