// LoRA: the PEFT formula worked out directly, merge/unmerge equal to the
// unmerged forward, enable/disable, several adapters, and a save/load round trip.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>


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

TEST_CASE("adapters are registered parameters: Module::to moves them, parameters() lists them") {
  torch::NoGradGuard ng;
  nn::LoraLinear lin(4, 3);
  CHECK(lin->parameters().size() == 2);
  lin->add_adapter("a", 2, 2.0);
  CHECK(lin->parameters().size() == 4);
  lin->to(torch::kBFloat16);  // plain Module::to: no LoRA override
  CHECK((lin->adapters.at("a").A.scalar_type() == torch::kBFloat16));
  CHECK((lin->adapters.at("a").B.scalar_type() == torch::kBFloat16));
  for (const auto& p : lin->parameters()) CHECK((p.scalar_type() == torch::kBFloat16));
  CHECK((lin->forward(torch::randn({1, 4}).to(torch::kBFloat16)).scalar_type() == torch::kBFloat16));
}

namespace {
std::vector<std::string> keys(torch::nn::Module& m) {
  std::vector<std::string> out;
  for (const auto& p : m.named_parameters()) out.push_back(p.key());
  return out;
}
}  // namespace

TEST_CASE("LoRA parameters carry PEFT's names: lora_A.<adapter>.weight, lora_B.<adapter>.weight") {
  nn::LoraConv2d conv(3, 5, 3, 1, 1);
  conv->add_adapter("scr", 2, 4.0);
  conv->add_adapter("seg", 3, 3.0);
  CHECK(keys(*conv) == std::vector<std::string>{"weight", "bias", "lora_A.scr.weight", "lora_A.seg.weight",
                                                "lora_B.scr.weight", "lora_B.seg.weight"});
  auto params = conv->named_parameters();
  CHECK(params["lora_A.seg.weight"].sizes() == torch::IntArrayRef({3, 3, 3, 3}));  // PEFT: Conv2d(in, r, k)
  CHECK(params["lora_B.seg.weight"].sizes() == torch::IntArrayRef({5, 3, 1, 1}));  // PEFT: Conv2d(r, out, 1)
  CHECK(params["lora_B.seg.weight"].is_same(conv->adapters.at("seg").B));
  CHECK(params["lora_A.seg.weight"].requires_grad());
  std::string adapter;
  CHECK(nn::is_lora_parameter("down_blocks.0.resnets.0.conv1.lora_B.scr.weight", &adapter));
  CHECK(adapter == "scr");
  CHECK(nn::is_lora_parameter("lora_A.x.weight", &adapter));
  CHECK(adapter == "x");
  CHECK(!nn::is_lora_parameter("down_blocks.0.resnets.0.conv1.weight"));
  CHECK(!nn::is_lora_parameter("a.lora_A.weight"));  // save_pretrained's form names no adapter
  // A merged adapter keeps its parameters (as PEFT); deleting removes them.
  conv->merge("scr");
  CHECK(keys(*conv).size() == 6);
  conv->delete_adapter("scr");
  CHECK(keys(*conv) == std::vector<std::string>{"weight", "bias", "lora_A.seg.weight", "lora_B.seg.weight"});
  conv->add_adapter("seg", 1, 1.0);  // same name again: replaced, rank 1
  CHECK(conv->named_parameters()["lora_A.seg.weight"].size(0) == 1);
  conv->delete_adapter("seg");
  CHECK(keys(*conv) == std::vector<std::string>{"weight", "bias"});
  CHECK(conv->named_modules("", false).is_empty());  // the plain module again
}

TEST_CASE("deleting a merged adapter unmerges it first") {
  torch::NoGradGuard ng;
  torch::manual_seed(8);
  nn::LoraLinear lin(6, 4);
  const torch::Tensor w0 = lin->weight.clone();
  lin->add_adapter("a", 2, 2.0);
  randomise(*lin, "a");
  lin->merge("a");
  CHECK(max_abs(lin->weight, w0) > 1e-3);
  lin->delete_adapter("a");
  CHECK(max_abs(lin->weight, w0) < 1e-6);
  CHECK(lin->adapters.empty());
}

// The names peft itself gives: its save_pretrained file (lora_peft/, peft
// 0.7.1) holds "base_model.model.<module>.lora_A.weight" for the adapter
// "default", whose in-model parameter is "<module>.lora_A.default.weight".
TEST_CASE("LoRA parameter names equal peft's, loaded from its file and added with its target_modules") {
  const nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  auto peft_file = SafeTensorsFile::open(kDir + "/lora_peft/adapter_model.safetensors");
  const std::string prefix = "base_model.model.";
  std::map<std::string, std::vector<int64_t>> want;  // in-model name -> shape
  for (const TensorView& t : peft_file->tensors()) {
    REQUIRE(t.name.compare(0, prefix.size(), prefix) == 0);
    std::string k = t.name.substr(prefix.size());
    const size_t ab = k.rfind(".weight");
    REQUIRE(ab != std::string::npos);
    k.insert(ab, ".default");  // <module>.lora_A.default.weight
    want[k] = t.shape;
  }
  REQUIRE(want.size() == 128);
  auto lora_params = [](torch::nn::Module& m) {
    std::map<std::string, std::vector<int64_t>> out;
    for (const auto& p : m.named_parameters())
      if (nn::is_lora_parameter(p.key())) out[p.key()] = p.value().sizes().vec();
    return out;
  };
  SUBCASE("loaded from peft's file") {
    nn::UNet2DCondition unet(cfg);
    model::LoraLoadOptions opt;
    opt.prefix = prefix;
    model::load_lora(*unet, *peft_file, opt);
    CHECK(lora_params(*unet) == want);
  }
  SUBCASE("added with adapter_config.json's target_modules and r") {
    nlohmann::json conf = nlohmann::json::parse(std::ifstream(kDir + "/lora_peft/adapter_config.json"));
    const auto targets = conf["target_modules"].get<std::vector<std::string>>();
    nn::UNet2DCondition unet(cfg);
    nn::add_lora(*unet, "default", conf["r"].get<int64_t>(), conf["lora_alpha"].get<double>(), targets);
    CHECK(lora_params(*unet) == want);
  }
}

namespace {
// The UNet with two adapters whose B are random (B starts at zero).
nn::UNet2DCondition unet_with_adapters(const nn::UNetConfig& cfg, const SafeTensorsFile& weights) {
  nn::UNet2DCondition unet(cfg);
  model::load_state_dict(*unet, weights);
  unet->eval();
  nn::add_lora(*unet, "scr", 4, 8.0, {"to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "conv_in"});
  nn::add_lora(*unet, "seg", 2, 2.0, {"to_q", "proj_in"});
  torch::NoGradGuard ng;
  for (auto& p : unet->named_parameters())
    if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0, 0.1);
  return unet;
}
}  // namespace

TEST_CASE("a state-dict save holds the adapters: safetensors over named_parameters and torch::save round trips") {
  torch::NoGradGuard ng;
  torch::manual_seed(6);
  const nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  auto weights = SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors");
  nn::UNet2DCondition unet = unet_with_adapters(cfg, *weights);
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  const torch::Tensor x = get("sample"), t = get("timesteps"), ctx = get("context");
  const torch::Tensor with = unet->forward(x, t, ctx);
  CHECK(max_abs(with, get("out")) > 1e-3);  // the adapters matter

  char tmpl[] = "/tmp/rass-lora-XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  // The project's safetensors writer over the plain state dict: no LoRA special case.
  std::vector<TensorToWrite> out;
  std::vector<torch::Tensor> keep;
  size_t lora = 0;
  for (const auto& p : unet->named_parameters()) {
    keep.push_back(p.value().contiguous());
    out.push_back({p.key(), DType::f32, p.value().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
    lora += nn::is_lora_parameter(p.key());
  }
  size_t pairs = 0;  // (layer, adapter)
  for (auto& [path, layer] : nn::lora_layers(*unet)) pairs += layer->adapters.size();
  CHECK(lora == 2 * pairs);
  CHECK(pairs > 20);
  write_safetensors(dir + "/state.safetensors", out);
  {
    torch::manual_seed(99);  // other random adapters, replaced by the load
    nn::UNet2DCondition fresh = unet_with_adapters(cfg, *weights);
    CHECK(max_abs(fresh->forward(x, t, ctx), with) > 1e-3);
    model::LoadReport r = model::load_state_dict(*fresh, *SafeTensorsFile::open(dir + "/state.safetensors"));  // strict
    CHECK(r.complete());
    CHECK(torch::equal(fresh->forward(x, t, ctx), with));
  }
  {
    // Without the adapters, the same file has unexpected tensors: named exactly.
    nn::UNet2DCondition plain(cfg);
    model::LoadReport r = model::load_state_dict(*plain, *SafeTensorsFile::open(dir + "/state.safetensors"), false);
    CHECK(r.unexpected.size() == lora);
    CHECK(r.missing.empty());
  }
  {
    torch::save(unet, dir + "/state.pt");
    torch::manual_seed(98);
    nn::UNet2DCondition fresh = unet_with_adapters(cfg, *weights);
    torch::load(fresh, dir + "/state.pt");
    CHECK(torch::equal(fresh->forward(x, t, ctx), with));
  }
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("training: mark_only_lora_as_trainable freezes the base and lists the adapters' parameters") {
  torch::manual_seed(7);
  const nn::UNetConfig cfg = model::read_unet_config(kDir + "/unet_tiny/config.json");
  auto weights = SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors");
  nn::UNet2DCondition unet = unet_with_adapters(cfg, *weights);
  size_t all = 0, scr = 0, seg = 0;
  for (const auto& p : unet->named_parameters()) {
    std::string adapter;
    ++all;
    if (nn::is_lora_parameter(p.key(), &adapter)) (adapter == "scr" ? scr : seg)++;
  }
  CHECK(nn::trainable_parameters(*unet).size() == all);  // nothing frozen yet
  auto trainable = nn::mark_only_lora_as_trainable(*unet);
  CHECK(trainable.size() == scr + seg);
  for (const auto& p : trainable) CHECK(nn::is_lora_parameter(p.key()));
  trainable = nn::mark_only_lora_as_trainable(*unet, {"seg"});  // train Seg LoRA, SCR fixed
  CHECK(trainable.size() == seg);
  for (const auto& p : trainable) CHECK(p.key().find(".seg.") != std::string::npos);
  CHECK(nn::trainable_parameters(*unet).size() == seg);
  CHECK(!unet->conv_in->weight.requires_grad());
  CHECK(!unet->conv_in->adapters.at("scr").A.requires_grad());

  // One optimizer step moves only the trainable adapters.
  auto io = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  auto get = [&](const char* k) { return model::to_tensor(*io->find(k), io->path()); };
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : unet->named_parameters()) before[p.key()] = p.value().detach().clone();
  torch::optim::SGD opt(trainable.values(), torch::optim::SGDOptions(0.1));
  unet->forward(get("sample"), get("timesteps"), get("context")).pow(2).mean().backward();
  opt.step();
  size_t changed = 0;
  for (const auto& p : unet->named_parameters()) {
    const bool moved = !torch::equal(p.value().detach(), before[p.key()]);
    if (moved) {
      ++changed;
      CHECK(p.key().find(".seg.") != std::string::npos);
    }
  }
  CHECK(changed > 0);
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

TEST_CASE("non-finite LoRA factors and full weights are refused, naming the file and the tensor") {
  const std::string layer = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";  // Linear 16 -> 16
  std::vector<float> a(4 * 16, 0.1f), b(16 * 4, 0.1f);
  const std::vector<TensorToWrite> pair = {{layer + ".lora_A.weight", DType::f32, {4, 16}, a.data(), a.size() * 4},
                                           {layer + ".lora_B.weight", DType::f32, {16, 4}, b.data(), b.size() * 4}};
  CHECK(lora_error(pair).empty());
  b[5] = std::nanf("");
  CHECK(lora_error(pair).find("'" + layer + ".lora_B.weight' holds non-finite values") != std::string::npos);
  b[5] = 0.1f;
  a[63] = -INFINITY;
  CHECK(lora_error(pair).find("'" + layer + ".lora_A.weight' holds non-finite values") != std::string::npos);
  a[63] = 0.1f;
  // A full weight (conv_in of unet_tiny: [16, 4, 3, 3]) is checked the same way.
  std::vector<float> conv(16 * 4 * 3 * 3, 0.5f);
  auto with_full = pair;
  with_full.push_back({"conv_in.weight", DType::f32, {16, 4, 3, 3}, conv.data(), conv.size() * 4});
  CHECK(lora_error(with_full).empty());
  conv[100] = INFINITY;
  CHECK(lora_error(with_full).find("'conv_in.weight' holds non-finite values") != std::string::npos);
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
