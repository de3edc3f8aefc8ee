// LoRA: the PEFT formula worked out directly, merge/unmerge equal to the
// unmerged forward, enable/disable, several adapters, and a save/load round trip.
#include "torch_doctest.hpp"

#include <cstdlib>


#include "rass/core/error.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"

using namespace rass;

static const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

static double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

static void randomise(nn::LoraLayer& l, const std::string& name) {
  auto& a = l.adapters.at(name);
  a.B.normal_(0, 0.1);  // B starts at zero; give the adapter an effect
}

TEST_CASE("LoRA Linear and Conv2d follow y = base(x) + alpha/r * B(A(x))") {
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  nn::LoraLinear lin(6, 5);
  lin->add_adapter("a", 2, 8.0);
  randomise(*lin, "a");
  torch::Tensor x = torch::randn({3, 6});
  const auto& ad = lin->adapters.at("a");
  torch::Tensor want = x.matmul(lin->weight.t()) + lin->bias + 4.0 * x.matmul(ad.A.t()).matmul(ad.B.t());
  CHECK(max_abs(lin(x), want) < 1e-5);

  nn::LoraConv2d conv(3, 4, 3, 1, 1);
  const torch::Tensor w0 = conv->weight.clone();
  conv->add_adapter("c", 2, 2.0);
  randomise(*conv, "c");
  torch::Tensor img = torch::randn({1, 3, 7, 6});
  const auto& ac = conv->adapters.at("c");
  torch::Tensor base = torch::conv2d(img, conv->weight, conv->bias, 1, 1);
  torch::Tensor lora = torch::conv2d(torch::conv2d(img, ac.A, {}, 1, 1), ac.B);
  CHECK(max_abs(conv(img), base + lora) < 1e-5);
  // Merging folds B A into the weight: same output, adapter path off.
  conv->merge("c");
  CHECK(max_abs(conv(img), base + lora) < 1e-5);
  conv->unmerge("c");
  CHECK(max_abs(conv->weight, w0) < 1e-6);  // unmerge restores the base weight
  CHECK(max_abs(torch::conv2d(img, conv->weight, conv->bias, 1, 1), base) < 1e-5);
}

TEST_CASE("UNet with LoRA: merged equals unmerged, disable restores the base, save/load round trip") {
  torch::NoGradGuard ng;
  torch::manual_seed(4);
  nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  nn::UNet2DCondition unet(cfg);
  auto weights = SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors");
  model::load_state_dict(*unet, *weights);
  unet->eval();
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  const torch::Tensor x = get("sample"), t = get("timesteps"), ctx = get("context");
  const torch::Tensor base = unet->forward(x, t, ctx);

  // OSEDiff's targets (REFERENCE.md 3).
  const std::vector<std::string> targets = {"to_q", "to_k", "to_v", "to_out.0", "conv", "conv1", "conv2", "conv_in",
                                            "conv_shortcut", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv_out"};
  const size_t n = nn::add_lora(*unet, "scr", 4, 8.0, targets, true);  // alpha != rank: the file must carry it
  CHECK(n > 20);
  for (auto& [path, layer] : nn::lora_layers(*unet))
    if (layer->adapters.count("scr")) randomise(*layer, "scr");
  const torch::Tensor with = unet->forward(x, t, ctx);
  CHECK(max_abs(with, base) > 1e-3);
  nn::merge_lora(*unet, "scr");
  CHECK(max_abs(unet->forward(x, t, ctx), with) < 1e-4);
  nn::unmerge_lora(*unet, "scr");
  CHECK(max_abs(unet->forward(x, t, ctx), with) < 1e-4);
  nn::set_lora_enabled(*unet, "scr", false);
  CHECK(max_abs(unet->forward(x, t, ctx), base) < 1e-4);
  nn::merge_lora(*unet, "scr");  // a disabled adapter is not merged
  CHECK(max_abs(unet->forward(x, t, ctx), base) < 1e-4);
  nn::set_lora_enabled(*unet, "scr", true);
  nn::merge_lora(*unet, "scr");
  nn::set_lora_enabled(*unet, "scr", false);  // disabling a merged adapter unmerges it
  CHECK(max_abs(unet->forward(x, t, ctx), base) < 1e-4);
  nn::set_lora_enabled(*unet, "scr", true);

  // A second adapter on top: both apply, each can be switched off.
  nn::add_lora(*unet, "seg", 2, 2.0, {"to_q", "to_v"});
  for (auto& [path, layer] : nn::lora_layers(*unet))
    if (layer->adapters.count("seg")) randomise(*layer, "seg");
  const torch::Tensor both = unet->forward(x, t, ctx);
  CHECK(max_abs(both, with) > 1e-4);
  nn::set_lora_enabled(*unet, "seg", false);
  CHECK(max_abs(unet->forward(x, t, ctx), with) < 1e-5);
  nn::set_lora_enabled(*unet, "seg", true);

  char tmpl[] = "/tmp/rass-lora-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  model::save_lora(*unet, "scr", dir + "/scr.safetensors", "unet.");
  nn::UNet2DCondition fresh(cfg);
  model::load_state_dict(*fresh, *weights);
  fresh->eval();
  auto lora_file = SafeTensorsFile::open(dir + "/scr.safetensors");
  model::LoraLoadOptions opt;
  opt.prefix = "unet.";
  opt.adapter = "scr";
  model::LoraLoadReport rep = model::load_lora(*fresh, *lora_file, opt);
  CHECK(rep.adapters.at("scr") == n);
  CHECK(rep.unmatched.empty());
  CHECK(!rep.alpha_guessed);
  CHECK(max_abs(fresh->forward(x, t, ctx), with) < 1e-5);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a LoRA file that does not fit is refused, naming the layer") {
  nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  nn::UNet2DCondition unet(cfg);
  char tmpl[] = "/tmp/rass-lora-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  std::vector<float> a(4 * 16, 0.f), b(16 * 4, 0.f);
  write_safetensors(dir + "/bad.safetensors",
                    {{"down_blocks.0.attentions.0.nope.lora_A.weight", StDType::F32, {4, 16}, a.data(), a.size() * 4},
                     {"down_blocks.0.attentions.0.nope.lora_B.weight", StDType::F32, {16, 4}, b.data(), b.size() * 4}});
  auto f = SafeTensorsFile::open(dir + "/bad.safetensors");
  try {
    model::load_lora(*unet, *f);
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("down_blocks.0.attentions.0.nope") != std::string::npos);
  }
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("adapters follow the module to another dtype") {
  torch::NoGradGuard ng;
  nn::LoraLinear lin(4, 3);
  lin->add_adapter("a", 2, 2.0);
  lin->to(torch::kBFloat16);
  CHECK((lin->adapters.at("a").A.scalar_type() == torch::kBFloat16));
  CHECK((lin->forward(torch::randn({1, 4}).to(torch::kBFloat16)).scalar_type() == torch::kBFloat16));
}
