// rass-merge-lora as library calls on model folders assembled from the tiny
// fixtures. Expected values come from outside the code under test: the
// UNet outputs peft and diffusers computed with each LoRA applied
// (lora_ref_io.safetensors, make_lora_fixture.py), target lists from
// diffusers' own UNet parameter names (merge_lora/seg_targets.json,
// make_merge_lora_fixture.py), counts worked by hand from the configs, and
// weight differences built here with known singular values.
#include "torch_doctest.hpp"
#include "tolerances.hpp"

#include <algorithm>
#include <cmath>
#include <set>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_inventory.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/model/lora_surgery.hpp"
#include "rass/model/merge_lora_tool.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"

using namespace rass;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(RASS_FIXTURES) + "/nn";

double max_abs(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/rass-merge-lora-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A diffusers folder: unet/ and vae/ from the fixtures.
std::string make_model(const std::string& root) {
  const std::string sd = root + "/sd";
  fs::create_directories(sd);
  fs::copy(kDir + "/unet_tiny", sd + "/unet");
  fs::copy(kDir + "/vae_tiny", sd + "/vae");
  return sd;
}

torch::Tensor io(const char* key) {
  auto f = SafeTensorsFile::open(kDir + "/unet_tiny_io.safetensors");
  return model::to_tensor(*f->find(key), f->path());
}
torch::Tensor ref(const char* key) {
  auto f = SafeTensorsFile::open(kDir + "/lora_ref_io.safetensors");
  return model::to_tensor(*f->find(key), f->path());
}

nn::UNet2DCondition load_unet(const std::string& dir) {
  nn::UNet2DCondition unet(model::read_unet_config(dir + "/config.json"));
  model::load_component(*unet, dir);
  unet->eval();
  return unet;
}

torch::Tensor run(nn::UNet2DCondition unet) {
  torch::NoGradGuard ng;
  return unet->forward(io("sample"), io("timesteps"), io("context"));
}

model::MergeLoraJob job(model::MergeLoraJob::Command c) {
  model::MergeLoraJob j;
  j.command = c;
  j.quiet = true;
  j.threads = 1;
  return j;
}

const std::string kPeft = kDir + "/lora_peft/adapter_model.safetensors";
const std::string kProcs = kDir + "/lora_attn_procs.safetensors";

}  // namespace

TEST_CASE("merge: the merged UNet reproduces peft's and diffusers' outputs with the adapters unmerged") {
  TempDir t;
  const std::string sd = make_model(t.path);
  SUBCASE("peft save_pretrained file") {
    auto j = job(model::MergeLoraJob::Command::merge);
    j.model = sd;
    j.loras = {{kPeft, 1.0}};
    j.output_dir = t.path + "/merged";
    j.output = t.path + "/unet.safetensors";
    CHECK(model::run_merge_lora_tool(j) == 0);
    nn::UNet2DCondition merged = load_unet(t.path + "/merged/unet");
    CHECK(max_abs(run(merged), ref("peft_out")) < TOL_LORA_PEFT);
    // -o holds the same weights; the other components are the base's files.
    auto o = SafeTensorsFile::open(t.path + "/unet.safetensors");
    CHECK(o->tensors().size() == SafeTensorsFile::open(kDir + "/unet_tiny/diffusion_pytorch_model.safetensors")->tensors().size());
    CHECK(fs::equivalent(t.path + "/merged/vae/diffusion_pytorch_model.safetensors", sd + "/vae/diffusion_pytorch_model.safetensors"));
    // No LoRA tensor is left in the merged weights.
    for (const auto& v : o->tensors()) CHECK(v.name.find("lora") == std::string::npos);
  }
  SUBCASE("two files with scales equal both loaded unmerged") {
    auto j = job(model::MergeLoraJob::Command::merge);
    j.model = sd;
    j.loras = {{kPeft, 0.5}, {kProcs, 1.5}};
    j.output = t.path + "/unet2.safetensors";
    CHECK(model::run_merge_lora_tool(j) == 0);
    nn::UNet2DCondition unmerged = load_unet(kDir + "/unet_tiny");
    int k = 0;
    for (const auto& [file, scale] : std::vector<std::pair<std::string, double>>{{kPeft, 0.5}, {kProcs, 1.5}}) {
      auto f = SafeTensorsFile::open(file);
      model::LoraLoadOptions opt;
      opt.scale = scale;
      opt.adapter = "a" + std::to_string(k++);
      model::detect_lora_layout(*f, opt);
      model::load_lora(*unmerged, *f, opt);
    }
    const torch::Tensor want = run(unmerged);
    CHECK(max_abs(want, run(load_unet(kDir + "/unet_tiny"))) > 1e-3);  // the adapters matter
    nn::UNet2DCondition merged(model::read_unet_config(kDir + "/unet_tiny/config.json"));
    model::load_state_dict(*merged, *SafeTensorsFile::open(t.path + "/unet2.safetensors"));
    merged->eval();
    CHECK(max_abs(run(merged), want) < TOL_LORA_PEFT);
  }
  SUBCASE("an fp16 lone file with a sibling config: merged in fp32, written in fp16") {
    fs::create_directories(t.path + "/half");
    fs::copy(kDir + "/unet_tiny/config.json", t.path + "/half/config.json");
    nn::UNet2DCondition base = load_unet(kDir + "/unet_tiny");
    std::vector<torch::Tensor> keep;
    std::vector<TensorToWrite> w;
    for (const auto& p : base->named_parameters()) {
      keep.push_back(p.value().detach().to(torch::kHalf).contiguous());
      w.push_back({p.key(), DType::f16, p.value().sizes().vec(), keep.back().data_ptr(), size_t(keep.back().nbytes())});
    }
    write_safetensors(t.path + "/half/w.safetensors", w);
    auto j = job(model::MergeLoraJob::Command::merge);
    j.model = t.path + "/half/w.safetensors";
    j.loras = {{kPeft, 1.0}};
    j.output = t.path + "/half_merged.safetensors";
    CHECK(model::run_merge_lora_tool(j) == 0);
    auto out = SafeTensorsFile::open(j.output);
    for (const auto& v : out->tensors()) CHECK(v.dtype == DType::f16);
    // Expected: the fp16 base in fp32 plus peft's delta (alpha 6 / r 4), rounded once to fp16.
    const std::string layer = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";
    auto lf = SafeTensorsFile::open(kPeft);
    const torch::Tensor A = model::to_tensor(*lf->find("base_model.model." + layer + ".lora_A.weight"), kPeft);
    const torch::Tensor B = model::to_tensor(*lf->find("base_model.model." + layer + ".lora_B.weight"), kPeft);
    const torch::Tensor w16 = base->named_parameters()[layer + ".weight"].detach().to(torch::kHalf).to(torch::kFloat);
    const torch::Tensor want = (w16 + 1.5 * B.matmul(A)).to(torch::kHalf).to(torch::kFloat);
    const torch::Tensor got = model::to_tensor(*out->find(layer + ".weight"), j.output);
    CHECK(torch::equal(got, want));
  }
}

namespace {
// Orthonormal columns [n, k] (QR of a random matrix).
torch::Tensor orthonormal(int64_t n, int64_t k) { return std::get<0>(at::linalg_qr(torch::randn({n, k}, torch::kDouble))); }
}  // namespace

TEST_CASE("low_rank_factors: a known rank-3 difference is recovered; energy kept = hand ratio of singular values") {
  torch::manual_seed(11);
  // delta = U diag(3, 2, 1) V^T: energies 9, 4, 1 (of 14).
  const torch::Tensor s = torch::tensor({3.0, 2.0, 1.0}, torch::kDouble);
  for (const std::vector<int64_t>& shape : {std::vector<int64_t>{12, 20}, std::vector<int64_t>{6, 5, 3, 3}}) {
    const int64_t out = shape[0], in = shape.size() == 2 ? shape[1] : shape[1] * shape[2] * shape[3];
    const torch::Tensor delta = (orthonormal(out, 3) * s).matmul(orthonormal(in, 3).t()).view(shape);
    for (int64_t r : {3, 2, 1, 8}) {
      const model::LowRankFactors f = model::low_rank_factors(delta.to(torch::kFloat), r);
      const double want = r >= 3 ? 1.0 : r == 2 ? 13.0 / 14.0 : 9.0 / 14.0;
      CHECK(std::abs(f.energy_kept - want) < 1e-6);
      CHECK(std::abs(f.energy_total - 14.0) < 1e-4);
      CHECK(f.A.size(0) == r);  // padded to rank r where the matrix has fewer values (6x45 at r 8: 6)
      if (shape.size() == 4) {
        CHECK(f.A.sizes() == torch::IntArrayRef({r, 5, 3, 3}));
        CHECK(f.B.sizes() == torch::IntArrayRef({6, r, 1, 1}));
      }
      const torch::Tensor back = f.B.flatten(1).matmul(f.A.flatten(1)).view(shape).to(torch::kDouble);
      if (r >= 3) CHECK(max_abs(back, delta) < 1e-5);
      // The truncation error is the dropped singular values (Eckart-Young).
      else CHECK(std::abs((back - delta).norm().item<double>() - std::sqrt(14.0 - (r == 2 ? 13.0 : 9.0))) < 1e-5);
    }
  }
}

TEST_CASE("extract then merge reproduces a rank-r difference, and unchanged layers are skipped") {
  torch::manual_seed(12);
  TempDir t;
  const std::string sd = make_model(t.path);
  const std::string q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q";  // Linear 16 -> 16
  const std::string c = "down_blocks.0.resnets.0.conv1";                               // Conv2d 16 -> 16, 3x3
  const std::string bias = "up_blocks.1.resnets.0.conv2.bias";
  // tuned = base + known rank-3 deltas on two layers, and a changed bias.
  auto base_file = SafeTensorsFile::open(sd + "/unet/diffusion_pytorch_model.safetensors");
  const torch::Tensor s = torch::tensor({3.0, 2.0, 1.0}, torch::kDouble);
  std::map<std::string, torch::Tensor> tuned;
  for (const auto& v : base_file->tensors()) tuned[v.name] = model::to_tensor(v, base_file->path());
  tuned[q + ".weight"] += (orthonormal(16, 3) * s).matmul(orthonormal(16, 3).t()).to(torch::kFloat);
  tuned[c + ".weight"] += (orthonormal(16, 3) * s).matmul(orthonormal(144, 3).t()).view({16, 16, 3, 3}).to(torch::kFloat);
  tuned[bias] += 0.25;
  std::vector<TensorToWrite> w;
  for (auto& [name, x] : tuned) {
    x = x.contiguous();
    w.push_back({name, DType::f32, x.sizes().vec(), x.data_ptr(), size_t(x.nbytes())});
  }
  write_safetensors(t.path + "/tuned.safetensors", w);

  auto j = job(model::MergeLoraJob::Command::extract);
  j.model = sd;
  j.tuned = t.path + "/tuned.safetensors";
  j.rank = 3;
  j.full_weights = true;
  j.output = t.path + "/delta.safetensors";
  CHECK(model::run_merge_lora_tool(j) == 0);
  const model::LoraInventory inv = model::lora_inventory(*SafeTensorsFile::open(j.output));
  REQUIRE(inv.adapters.size() == 1);
  auto layers = inv.adapters.at("default").layers;
  std::sort(layers.begin(), layers.end());
  CHECK(layers == std::vector<std::string>{q, c});  // sorted; the 81 unchanged layers skipped
  CHECK(inv.adapters.at("default").alphas == std::set<double>{3.0});
  REQUIRE(inv.full_weights.size() == 1);
  CHECK(inv.full_weights[0].first == bias);

  auto m = job(model::MergeLoraJob::Command::merge);
  m.model = sd;
  m.loras = {{j.output, 1.0}};
  m.output = t.path + "/back.safetensors";
  CHECK(model::run_merge_lora_tool(m) == 0);
  auto back = SafeTensorsFile::open(m.output);
  double worst = 0;
  for (const auto& v : back->tensors()) worst = std::max(worst, max_abs(model::to_tensor(v, m.output), tuned.at(v.name)));
  CHECK(worst < 1e-5);

  // Restricted to a target that matches nothing: refused, naming it, nothing written.
  j.targets = {"no_such_layer"};
  j.output = t.path + "/none.safetensors";
  try {
    model::run_merge_lora_tool(j);
    FAIL("expected a refusal");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("no_such_layer") != std::string::npos);
  }
  CHECK(!fs::exists(j.output));
}

TEST_CASE("init-seg targets: RASS's grouping, as diffusers names them, counted by hand") {
  const nlohmann::json want = nlohmann::json::parse(std::ifstream(kDir + "/merge_lora/seg_targets.json"));
  auto check = [&](nn::UNet2DCondition& unet, const nlohmann::json& w) {
    // The same names in each group; the order differs (diffusers registers a block's
    // attentions before its resnets) and does not matter to PEFT's name matching.
    const model::LoraTargetGroups g = model::osediff_targets(*unet, false);
    auto set = [](const std::vector<std::string>& v) { return std::set<std::string>(v.begin(), v.end()); };
    CHECK(set(g.encoder) == set(w["encoder"].get<std::vector<std::string>>()));
    CHECK(set(g.decoder) == set(w["decoder"].get<std::vector<std::string>>()));
    CHECK(set(g.others) == set(w["others"].get<std::vector<std::string>>()));
    CHECK(set(g.encoder).size() == g.encoder.size());  // no duplicates
    return g;
  };
  // unet_tiny ([16, 32], one layer per block; CrossAttnDown, Down / Up, CrossAttnUp), by hand:
  //   encoder: conv_in 1 + down0 (resnet conv1, conv2; attention: proj_in, proj_out, attn1 and attn2
  //   to_q/k/v/out.0, ff.net.0.proj, ff.net.2 = 12; downsampler conv) 15 + down1 (conv1, conv2,
  //   conv_shortcut 16 -> 32) 3 = 19; others: mid 2 resnets x 2 + 1 attention x 12 = 16;
  //   decoder: up0 2 resnets x 3 (skip concat: all have conv_shortcut) + upsampler 1 = 7,
  //   up1 2 x 3 + 2 attentions x 12 = 30: 37 (38 with conv_out).
  nn::UNet2DCondition tiny(model::read_unet_config(kDir + "/unet_tiny/config.json"));
  const model::LoraTargetGroups g = check(tiny, want["unet_tiny"]);
  CHECK(g.encoder.size() == 19);
  CHECK(g.decoder.size() == 37);
  CHECK(g.others.size() == 16);
  CHECK(model::osediff_targets(*tiny, true).decoder.size() == 38);
  // SD 2.1-base's layout (REFERENCE 3: encoder 94, others 16, decoder 147, + conv_out), built
  // with tiny widths: encoder conv_in 1 + 3 cross-attention down blocks (2 resnets x 2 + the
  // conv_shortcut of blocks 1 and 2, 2 attentions x 12, downsampler) 29 + 30 + 30 + DownBlock2D 4 = 94;
  // others 2 x 2 + 12 = 16; decoder UpBlock2D 3 x 3 + upsampler = 10, then 3 cross-attention up
  // blocks 9 + 36 + upsampler (not the last) = 46 + 46 + 45: 147.
  nn::UNetConfig cfg;
  cfg.block_out_channels = {10, 20, 40, 40};
  cfg.norm_num_groups = 10;
  cfg.cross_attention_dim = 8;
  cfg.num_attention_heads = {5, 10, 20, 20};
  nn::UNet2DCondition sd21(cfg);
  const model::LoraTargetGroups s = check(sd21, want["sd21_layout"]);
  CHECK(s.encoder.size() == 94);
  CHECK(s.others.size() == 16);
  CHECK(s.decoder.size() == 147);
  CHECK(model::osediff_targets(*sd21, true).size() == 258);
}

TEST_CASE("init-seg: SCR merged, a zero-B Seg LoRA that leaves the output unchanged, rass.json, seeded") {
  TempDir t;
  const std::string sd = make_model(t.path);
  auto j = job(model::MergeLoraJob::Command::init_seg);
  j.model = sd;
  j.loras = {{kPeft, 1.0}};  // stands in for the SCR LoRA (a PEFT file with a known reference output)
  j.seed = 5;
  j.has_timestep = true;
  j.timestep = 1;
  j.formula = "residual";
  j.head = "none";  // make_model's 2-level UNet gives RAS no res4/res5 (tests/cli/test_train_chain.sh covers the head)
  j.output_dir = t.path + "/ras";
  CHECK(model::run_merge_lora_tool(j) == 0);
  const std::string out = j.output_dir;
  nn::UNet2DCondition unet = load_unet(out + "/unet");
  const torch::Tensor merged = run(unet);
  CHECK(max_abs(merged, ref("peft_out")) < TOL_LORA_PEFT);
  auto seg = SafeTensorsFile::open(out + "/seg_lora.safetensors");
  model::LoraLoadOptions opt;
  model::detect_lora_layout(*seg, opt);
  const model::LoraLoadReport r = model::load_lora(*unet, *seg, opt);
  CHECK(r.adapters.at("default_encoder_s2") == 19);
  CHECK(r.adapters.at("default_decoder_s2") == 37);
  CHECK(r.adapters.at("default_others_s2") == 16);
  CHECK(!r.alpha_guessed);
  CHECK(torch::equal(run(unet), merged));  // B = 0
  // PEFT's gaussian init: A ~ N(0, std 1/r), B = 0; alpha 8 (PEFT's default, scale 2 at rank 4).
  std::vector<torch::Tensor> as;
  for (auto& [path, layer] : nn::lora_layers(*unet))
    for (auto& [name, a] : layer->adapters) {
      CHECK(a.B.abs().max().item<double>() == 0);
      CHECK(a.scale() == doctest::Approx(2.0));
      as.push_back(a.A.flatten());
    }
  const torch::Tensor all = torch::cat(as);
  CHECK(all.numel() > 10000);
  CHECK(all.std().item<double>() == doctest::Approx(0.25).epsilon(0.03));
  CHECK(std::abs(all.mean().item<double>()) < 0.01);
  CHECK(unet->conv_out->adapters.empty());  // RASS drops conv_out
  CHECK(unet->conv_in->adapters.count("default_encoder_s2"));

  const auto meta = read_json_file(out + "/rass.json");
  CHECK(meta["method"] == "scr");
  CHECK(meta["stage"] == "ras-init");
  CHECK(meta["timestep"] == 1.0);
  CHECK(meta["formula"] == "residual");
  CHECK(!meta.contains("prompt_style"));
  CHECK(meta["seg_lora"]["rank"] == 4);
  CHECK(meta["seg_lora"]["alpha"] == 8.0);
  CHECK(meta["seg_lora"]["targets"].size() == 72);
  CHECK(meta["trainable"] == nlohmann::ordered_json::array({"conv_in"}));
  CHECK(meta["sources"]["scr_lora"][0]["file"] == kPeft);
  CHECK(fs::exists(out + "/vae/config.json"));

  // Deterministic by seed: the same seed gives the same file, another seed another.
  auto bytes = [](const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  j.output_dir = t.path + "/ras_again";
  CHECK(model::run_merge_lora_tool(j) == 0);
  CHECK(bytes(out + "/seg_lora.safetensors") == bytes(j.output_dir + "/seg_lora.safetensors"));
  j.seed = 6;
  j.output_dir = t.path + "/ras_other";
  CHECK(model::run_merge_lora_tool(j) == 0);
  CHECK(bytes(out + "/seg_lora.safetensors") != bytes(j.output_dir + "/seg_lora.safetensors"));
}

TEST_CASE("expand-channels: GleSAM's replication, worked by hand on conv_in and conv_out") {
  torch::manual_seed(13);
  TempDir t;
  const std::string sd = make_model(t.path);
  auto j = job(model::MergeLoraJob::Command::expand_channels);
  j.model = sd;
  j.factor = 3;
  j.output_dir = t.path + "/x3";
  CHECK(model::run_merge_lora_tool(j) == 0);
  const nn::UNetConfig cfg = model::read_unet_config(j.output_dir + "/unet/config.json");
  CHECK(cfg.in_channels == 12);
  CHECK(cfg.out_channels == 12);
  nn::UNet2DCondition big = load_unet(j.output_dir + "/unet");  // strict: every shape fits the new config
  nn::UNet2DCondition small = load_unet(kDir + "/unet_tiny");
  torch::NoGradGuard ng;
  // conv_in: input channel j uses the original channel j mod 4 (torch repeat), so on an input that is
  // the 4 channels repeated 3 times the response is 3 (W * x) + b: three times the original response
  // without its bias.
  const torch::Tensor x = torch::randn({2, 4, 8, 8});
  const torch::Tensor orig = small->conv_in->forward(x) - small->conv_in->bias.view({1, -1, 1, 1});
  const torch::Tensor rep = big->conv_in->forward(x.repeat({1, 3, 1, 1})) - big->conv_in->bias.view({1, -1, 1, 1});
  CHECK(max_abs(rep, 3 * orig) < 1e-5);
  CHECK(torch::equal(big->conv_in->bias, small->conv_in->bias));
  // conv_out: output channel j is the original channel j mod 4, weight and bias, no rescale.
  const torch::Tensor h = torch::randn({1, 16, 8, 8});
  const torch::Tensor y = big->conv_out->forward(h), y0 = small->conv_out->forward(h);
  // The weights are copies (exact); the outputs agree to rounding only: a
  // 12-channel convolution may take another GEMM blocking than a 4-channel
  // one, so its sums can be ordered differently (it did on some CPUs).
  for (int64_t k = 0; k < 3; ++k) {
    CHECK(torch::equal(big->conv_out->weight.slice(0, 4 * k, 4 * k + 4), small->conv_out->weight));
    CHECK(torch::equal(big->conv_out->bias.slice(0, 4 * k, 4 * k + 4), small->conv_out->bias));
    CHECK(max_abs(y.slice(1, 4 * k, 4 * k + 4), y0) < 1e-5);
  }
  CHECK(fs::equivalent(j.output_dir + "/vae/config.json", sd + "/vae/config.json"));  // linked
}

TEST_CASE("list: adapters, ranks and alphas as the fixture script wrote them") {
  const model::LoraInventory peft = model::lora_inventory(*SafeTensorsFile::open(kPeft));
  // make_lora_fixture.py: LoraConfig(r=4, lora_alpha=6) on to_q/k/v/out.0, proj_in/out, ff, conv1/2:
  // per transformer block 8 (attn1, attn2) + 2 ff, per attention + proj_in/out; 4 attentions, 8 resnets.
  REQUIRE(peft.adapters.size() == 1);
  const auto& a = peft.adapters.at("default");
  CHECK(a.ranks == std::set<int64_t>{4});
  CHECK(a.alphas == std::set<double>{6.0});
  CHECK(a.alpha_source == "adapter_config.json");
  CHECK(a.layers.size() == 4 * 12 + 8 * 2);
  CHECK(peft.prefix == "base_model.model.");
  CHECK(peft.full_weights.empty());
  const model::LoraInventory procs = model::lora_inventory(*SafeTensorsFile::open(kProcs));
  const auto& p = procs.adapters.at("default");
  CHECK(p.ranks == std::set<int64_t>{4});
  CHECK(p.layers.size() == 4 * 2 * 4);  // 4 transformer blocks x (attn1, attn2) x (q, k, v, out)
  CHECK(p.alpha_source.find("none") == 0);  // diffusers' processors carry no alpha
  CHECK(model::module_kind("up_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj") == "ff.net.0.proj");
  CHECK(model::module_kind("mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0") == "to_out.0");
}
