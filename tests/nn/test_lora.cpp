// LoRA: the PEFT formula worked out directly, merge/unmerge equal to the
// unmerged forward, enable/disable, several adapters, and a save/load round trip.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <cmath>
#include <cstdlib>
#include <map>


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
                    {{"down_blocks.0.attentions.0.nope.lora_A.weight", DType::f32, {4, 16}, a.data(), a.size() * 4},
                     {"down_blocks.0.attentions.0.nope.lora_B.weight", DType::f32, {16, 4}, b.data(), b.size() * 4}});
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

namespace {
// The Error load_lora throws for a file with these tensors and metadata.
std::string lora_error(const std::vector<TensorToWrite>& tensors, const std::map<std::string, std::string>& meta = {}) {
  nn::UNet2DCondition unet(model::read_unet_config(kDir + "/unet_tiny/config.json"));
  char tmpl[] = "/tmp/rass-lora-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/l.safetensors";
  write_safetensors(path, tensors, meta);
  std::string what;
  try {
    model::load_lora(*unet, *SafeTensorsFile::open(path));
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    what = e.what();
    CHECK(what.find(path) != std::string::npos);
  }
  std::system(("rm -rf " + dir).c_str());
  return what;
}
}  // namespace

TEST_CASE("LoRA files with no tensors, a bad alpha or rank 0 are refused, naming the file") {
  const std::string layer = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";  // Linear 16 -> 16
  std::vector<float> a(4 * 16, 0.1f), b(16 * 4, 0.1f);
  const std::vector<TensorToWrite> pair = {{layer + ".lora_A.weight", DType::f32, {4, 16}, a.data(), a.size() * 4},
                                           {layer + ".lora_B.weight", DType::f32, {16, 4}, b.data(), b.size() * 4}};
  CHECK(lora_error({}).find("no tensors") != std::string::npos);
  CHECK(lora_error(pair, {{"lora_alpha", "abc"}}).find("lora_alpha") != std::string::npos);
  CHECK(lora_error(pair, {{"lora_alpha", "nan"}}).find("lora_alpha") != std::string::npos);
  CHECK(lora_error(pair, {{"lora_alpha", "-4"}}).find("lora_alpha") != std::string::npos);
  CHECK(lora_error(pair, {{"lora_alpha", "8"}}).empty());  // a good file loads
  float nan = std::nanf(""), eight = 8.f;
  auto with_alpha = pair;
  with_alpha.push_back({layer + ".alpha", DType::f32, {}, &nan, 4});
  CHECK(lora_error(with_alpha).find(layer + ".alpha") != std::string::npos);
  with_alpha.back().data = &eight;
  CHECK(lora_error(with_alpha).empty());
  const std::vector<TensorToWrite> rank0 = {{layer + ".lora_A.weight", DType::f32, {0, 16}, nullptr, 0},
                                            {layer + ".lora_B.weight", DType::f32, {16, 0}, nullptr, 0}};
  CHECK(lora_error(rank0).find("rank 0") != std::string::npos);
}

TEST_CASE("a per-layer alpha tensor sets that layer's scale") {
  torch::NoGradGuard ng;
  nn::UNet2DCondition unet(model::read_unet_config(kDir + "/unet_tiny/config.json"));
  const std::string layer = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
  std::vector<float> a(2 * 16, 0.1f), b(16 * 2, 0.1f);
  float alpha = 6.f;
  char tmpl[] = "/tmp/rass-lora-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_safetensors(dir + "/l.safetensors", {{layer + ".lora_A.weight", DType::f32, {2, 16}, a.data(), a.size() * 4},
                                             {layer + ".lora_B.weight", DType::f32, {16, 2}, b.data(), b.size() * 4},
                                             {layer + ".alpha", DType::f32, {}, &alpha, 4}});
  model::LoraLoadReport r = model::load_lora(*unet, *SafeTensorsFile::open(dir + "/l.safetensors"));
  CHECK(!r.alpha_guessed);
  for (auto& [p, l] : nn::lora_layers(*unet))
    if (p == layer) CHECK(l->adapters.at("default").scale() == doctest::Approx(3.0));
  std::system(("rm -rf " + dir).c_str());
}

// tests/nn/make_lora_fixture.py: LoRA files written by peft (save_pretrained
// of a LoRA-wrapped diffusers UNet) and by diffusers 0.25.1 (attention
// processors, AttnProcsLayers as save_attn_procs writes them), and the
// reference UNet outputs with each applied.
TEST_CASE("LoRA files written by peft and by diffusers reproduce the reference outputs") {
  torch::NoGradGuard ng;
  const nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  auto weights = SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors");
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto ref = SafeTensorsFile::open(kDir + "/lora_ref_io.safetensors");
  auto get = [&](const SafeTensorsFile& f, const char* k) { return model::to_tensor(*f.find(k), f.path()); };
  const torch::Tensor x = get(*io, "sample"), t = get(*io, "timesteps"), ctx = get(*io, "context");
  const torch::Tensor base = get(*io, "out");

  SUBCASE("peft save_pretrained: base_model.model. keys, alpha in adapter_config.json") {
    nn::UNet2DCondition unet(cfg);
    model::load_state_dict(*unet, *weights);
    unet->eval();
    const std::string dir = kDir + "/lora_peft";
    model::LoraLoadOptions opt;
    opt.prefix = "base_model.model.";
    opt.alpha = model::peft_config_alpha(dir + "/adapter_config.json");
    CHECK(opt.alpha == 6.0);
    model::LoraLoadReport r = model::load_lora(*unet, *SafeTensorsFile::open(dir + "/adapter_model.safetensors"), opt);
    CHECK(r.unmatched.empty());
    CHECK(r.adapters.at("default") > 10);
    const torch::Tensor want = get(*ref, "peft_out");
    CHECK(max_abs(want, base) > 1e-2);  // the adapter matters
    const double err = max_abs(unet->forward(x, t, ctx), want);
    MESSAGE("peft LoRA max abs error " << err);
    CHECK(err < TOL_LORA_PEFT);
  }
  SUBCASE("diffusers attention processors: processor.to_q_lora.down.weight keys") {
    nn::UNet2DCondition unet(cfg);
    model::load_state_dict(*unet, *weights);
    unet->eval();
    model::LoraLoadReport r = model::load_lora(*unet, *SafeTensorsFile::open(kDir + "/lora_attn_procs.safetensors"));
    CHECK(r.unmatched.empty());
    CHECK(r.alpha_guessed);  // the format has no alpha: diffusers scales by 1, i.e. alpha = rank
    CHECK(r.adapters.at("default") == 32);  // 8 Attention modules x (to_q, to_k, to_v, to_out.0)
    const torch::Tensor want = get(*ref, "attn_procs_out");
    CHECK(max_abs(want, base) > 1e-2);
    const double err = max_abs(unet->forward(x, t, ctx), want);
    MESSAGE("attn-procs LoRA max abs error " << err);
    CHECK(err < TOL_LORA_PROCS);
  }
}
