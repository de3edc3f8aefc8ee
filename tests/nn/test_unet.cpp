// UNet2DConditionModel against the reference (diffusers v0.25.1) on tiny
// random configs (fixtures from tests/nn/make_unet_fixture.py).
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <cmath>


#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"

#include <torch/version.h>

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
    nn::UNetCaptures cap;
    cap.up_blocks = true;
    torch::Tensor out = unet->forward(get("sample"), get("timesteps"), get("context"), &cap);
    torch::Tensor want = get("out");
    REQUIRE(out.sizes() == want.sizes());
    const double err = (out - want).abs().max().item<double>();
    MESSAGE(std::string(name), " max abs error ", err);
    CHECK(err < TOL_UNET);
    REQUIRE(cap.up_block_outputs.size() == cfg.block_out_channels.size());
    CHECK(cap.attention.empty());  // not asked for
    // up_blocks[i] ends at block_out_channels[n-1-i] channels; the last one is
    // what conv_norm_out / conv_out turn into the output.
    for (size_t i = 0; i < cap.up_block_outputs.size(); ++i)
      CHECK(cap.up_block_outputs[i].size(1) == cfg.block_out_channels[cfg.block_out_channels.size() - 1 - i]);
    const torch::Tensor& last = cap.up_block_outputs.back();
    CHECK(last.sizes().slice(2) == out.sizes().slice(2));
    CHECK(torch::equal(unet->conv_out(torch::silu(unet->conv_norm_out(last))), out));
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
  std::vector<std::string> cross, self;
  for (const auto& m : unet->named_modules("", false)) {
    const std::string& k = m.key();
    if (k.size() > 6 && k.compare(k.size() - 6, 6, ".attn2") == 0) cross.push_back(k);
    if (k.size() > 6 && k.compare(k.size() - 6, 6, ".attn1") == 0) self.push_back(k);
  }
  REQUIRE(cross.size() == 4);  // 1 down + 1 mid + 2 up transformer blocks in unet_tiny
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  nn::UNetCaptures cap;
  cap.cross_attention = true;
  torch::Tensor out = unet->forward(get("sample"), get("timesteps"), get("context"), &cap);
  CHECK((out - get("out")).abs().max().item<double>() < TOL_UNET);  // capture does not change the result
  REQUIRE(cap.attention.size() == cross.size());
  for (size_t i = 0; i < cross.size(); ++i) {
    // named_modules lists down, mid, up blocks in the order forward runs them.
    CHECK(cap.attention[i].path == cross[i]);
    const torch::Tensor& p = cap.attention[i].probs;
    REQUIRE(p.defined());
    CHECK(p.dim() == 3);
    CHECK(p.size(2) == 5);  // keys = context tokens
    CHECK((p.sum(-1) - 1).abs().max().item<double>() < 1e-5);
  }
  CHECK(cap.up_block_outputs.empty());
  // Self-attention too, and a reused UNetCaptures starts empty.
  cap.self_attention = true;
  unet->forward(get("sample"), get("timesteps"), get("context"), &cap);
  REQUIRE(cap.attention.size() == cross.size() + self.size());
  for (size_t i = 0; i < cross.size(); ++i) {
    CHECK(cap.attention[2 * i].path == self[i]);
    CHECK(cap.attention[2 * i + 1].path == cross[i]);
    const torch::Tensor& p = cap.attention[2 * i].probs;  // keys = queries = h*w
    CHECK(p.size(1) == p.size(2));
  }
}

TEST_CASE("Attention's captured probabilities are softmax(q k^T / sqrt(d)) of its own projections") {
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  const int64_t heads = 2, dh = 4, b = 2, n = 6, l = 3, ctx_dim = 5;
  nn::Attention attn(heads * dh, ctx_dim, heads, dh, false, 0, 0, false, false);
  const torch::Tensor x = torch::randn({b, n, heads * dh}), ctx = torch::randn({b, l, ctx_dim});
  torch::Tensor probs;
  const torch::Tensor out = attn->forward(x, ctx, &probs);
  // Capturing does not change the output: the same math path on 1.13 (bitwise);
  // on 2.x the uncaptured call takes the fused kernel, equal to rounding.
  const double diff = (attn->forward(x, ctx) - out).abs().max().item<double>();
#if TORCH_VERSION_MAJOR < 2
  CHECK(diff == 0);
#else
  CHECK(diff < 1e-6);
#endif
  // Worked out from the weights, per head: q = x Wq^T, k = c Wk^T, split into heads.
  const torch::Tensor q = x.matmul(attn->to_q->weight.t()).view({b, n, heads, dh});
  const torch::Tensor k = ctx.matmul(attn->to_k->weight.t()).view({b, l, heads, dh});
  REQUIRE(probs.sizes() == torch::IntArrayRef({b * heads, n, l}));
  for (int64_t bi = 0; bi < b; ++bi)
    for (int64_t h = 0; h < heads; ++h) {
      const torch::Tensor s = q.select(0, bi).select(1, h).matmul(k.select(0, bi).select(1, h).t()) / std::sqrt(double(dh));
      CHECK((probs[bi * heads + h] - s.softmax(-1)).abs().max().item<double>() < 1e-6);
    }
}

TEST_CASE("captured attention probabilities stay in the graph: a loss on them trains the LoRA adapters") {
  nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  nn::UNet2DCondition unet(cfg);
  model::load_state_dict(*unet, *SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors"));
  nn::add_lora(*unet, "scr", 2, 2.0, {"to_k"});
  nn::mark_only_lora_as_trainable(*unet);
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  nn::UNetCaptures cap;
  cap.cross_attention = true;
  unet->forward(get("sample"), get("timesteps"), get("context"), &cap);
  REQUIRE(!cap.attention.empty());
  torch::Tensor loss = torch::zeros({});
  for (const auto& c : cap.attention) loss = loss + c.probs.pow(2).sum();
  REQUIRE(loss.requires_grad());
  loss.backward();
  // lora_B starts at zero, so its gradient (B's, through A x) is the one that is nonzero.
  int with_grad = 0;
  for (const auto& p : unet->named_parameters()) {
    std::string adapter;
    if (!nn::is_lora_parameter(p.key(), &adapter)) {
      CHECK(!p.value().grad().defined());  // frozen base
      continue;
    }
    if (p.key().find("attn2.to_k.lora_B.scr.weight") != std::string::npos && p.value().grad().defined() &&
        p.value().grad().abs().sum().item<double>() > 0)
      ++with_grad;
  }
  CHECK(with_grad == 4);
}
