// rass-train resshift (lib/rass/train/resshift_stage.hpp: ResShift's own
// training) on the tiny ResShift network of tests/fixtures/nn/samsr_tiny:
// q_sample, the x_0 loss, the LPIPS term through the codebook's
// straight-through estimator and every gradient against the reference code
// (tests/train/make_resshift_fixture.py), refusals, and a run whose export
// rass-samsr runs as ResShift's chain.
#include "nn/torch_doctest.hpp"

#include <cmath>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/model/iqa_lpips.hpp"
#include "rass/model/samsr_model.hpp"
#include "rass/nn/resshift_init.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/resshift_stage.hpp"
#include "test_support.hpp"
#include "train/resshift_ref_grads.hpp"

namespace fs = std::filesystem;
using namespace rass;
using namespace rass::train;
using ojson = nlohmann::ordered_json;

namespace {

const std::string kFix = std::string(RASS_FIXTURES);
const std::string kTiny = kFix + "/nn/samsr_tiny";

StageEnv cpu_env() {
  StageEnv e;
  e.quiet = true;
  e.seed = 6;
  return e;
}

void write_hq(const std::string& dir, int n) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    Image img(72, 72, 3, 8);
    for (int y = 0; y < 72; ++y)
      for (int x = 0; x < 72; ++x) {
        uint8_t* p = img.u8() + (size_t(y) * 72 + x) * 3;
        p[0] = uint8_t(x * 3 + 20 * i), p[1] = uint8_t(y * 3), p[2] = uint8_t((x * y) % 200);
      }
    write_image(dir + "/" + std::to_string(i) + ".png", img);
  }
}

ojson settings(const std::string& images) { return ojson{{"model", kTiny}, {"images", images}, {"crop_size", 64}}; }

std::unique_ptr<Stage> make(const ojson& s) { return resshift_stage_info().make(s, cpu_env()); }

// Two steps of batch 2 into out_dir (its export: out_dir/final).
LoopConfig two_steps(const std::string& out_dir) {
  LoopConfig c;
  c.steps = 2;
  c.batch = 2;
  c.lr = 1e-4;
  c.out_dir = out_dir;
  c.quiet = true;
  c.config = {{"stage", "resshift"}};
  return c;
}

}  // namespace

TEST_CASE("resshift: q_sample, the x_0 loss, LPIPS and the gradients equal ResShift's training code") {
  const test::RefFile ref(kFix + "/train/resshift_ref.safetensors");
  test::TempDir t;
  write_hq(t.path + "/hq", 1);
  auto stage_ptr = make(settings(t.path + "/hq"));
  auto& stage = dynamic_cast<ResshiftStage&>(*stage_ptr);
  ResshiftInputs in;
  in.gt = ref.get("gt");
  in.lq = ref.get("lq");
  in.t = ref.get("t").to(torch::kLong);
  in.noise = ref.get("noise");
  {
    torch::NoGradGuard ng;
    in.z_y = stage.model().encode_lq(in.lq);
  }
  const nn::LpipsTrunk vgg = nn::LpipsTrunk::vgg;
  nn::Lpips lpips = model::load_lpips(kFix + "/iqa/lpips_vgg.safetensors", torch::kCPU, &vgg);
  const ResshiftTerms terms = resshift_terms(stage.model(), in, lpips.get());
  CHECK(torch::allclose(terms.z_t, ref.get("z_t"), 1e-5, 1e-5));
  CHECK(torch::allclose(terms.mse.detach(), ref.get("mse"), 2e-4, 1e-7));
  CHECK(torch::allclose(terms.lpips.detach(), ref.get("lpips"), 2e-4, 1e-7));
  MESSAGE("mse " << terms.mse[0].item<double>() << " " << terms.mse[1].item<double>() << ", lpips "
                 << terms.lpips[0].item<double>() << " " << terms.lpips[1].item<double>());
  (terms.mse + terms.lpips).mean().backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& q : stage.model().unet->named_parameters(true)) grads[q.key()] = q.value().grad();
  const test::RefFile names(kFix + "/train/sinsr_ref.safetensors");
  MESSAGE(test::check_ref_grads(grads, test::ref_grad_names(names), ref, ""));
}

TEST_CASE("resshift: refusals name the setting") {
  test::TempDir t;
  write_hq(t.path + "/hq", 1);
  auto expect = [&](const ojson& s, ExitCode code, const std::string& needle) {
    try {
      make(s);
      FAIL("accepted: " << s.dump());
    } catch (const Error& e) {
      CHECK(e.code() == code);
      const std::string what = e.what();
      INFO(what);
      CHECK(what.find(needle) != std::string::npos);
    }
  };
  ojson s = settings(t.path + "/hq");
  s.erase("model");
  expect(s, ExitCode::usage, "resshift.model");
  s = settings(t.path + "/hq");
  s["lpips_weight"] = 1.0;
  expect(s, ExitCode::usage, "resshift.lpips_weights");
  s = settings(t.path + "/hq");
  s["preset"] = "lqseg-2";
  expect(s, ExitCode::usage, "resshift.preset");
  s = settings(t.path + "/hq");
  s["crop_size"] = 68;
  expect(s, ExitCode::usage, "resshift.crop_size");
  s = settings(t.path + "/hq");
  s["init"] = "zeros";
  expect(s, ExitCode::usage, "resshift.init");
}

TEST_CASE("resshift: a run of the loop exports a folder rass-samsr runs as ResShift's chain, on the trained schedule") {
  test::TempDir t;
  write_hq(t.path + "/hq", 2);
  ojson s = settings(t.path + "/hq");
  s["lpips_weight"] = 1.0;
  s["lpips_weights"] = kFix + "/iqa/lpips_vgg.safetensors";
  auto stage = make(s);
  const TrainSummary sum = run_training(*stage, two_steps(t.path + "/run"));
  REQUIRE(sum.losses.size() == 2);
  const std::string out = t.path + "/run/final";
  const ojson cfg = read_json_file(out + "/samsr.json");
  CHECK(cfg["method"] == "resshift");
  // The start folder is method samsr (etas_start capped): the export keeps that schedule.
  CHECK(cfg["diffusion"]["cap_etas_start"] == true);
  CHECK(file_exists(out + "/sam/sam.json"));  // the start folder's sam/ goes along (sinsr noise sam takes it)
  model::SamsrModelOptions o;
  o.dir = out;
  o.steps = 4;
  model::SamsrModel m(o);
  CHECK(!m.sam_noise);
  CHECK(m.restore(read_image(kFix + "/nn/samsr_lq.png"), 1, "x", 0, 0).width == 96);
  model::SamsrModelOptions start;
  start.dir = kTiny;
  start.noise = "gaussian";
  CHECK(model::SamsrModel(start).sqrt_etas == m.sqrt_etas);
}

TEST_CASE("resshift.init random: ResShift's initialisation (PyTorch's defaults, zero_module, the bias tables' 0.02)") {
  const model::SamsrFolderConfig cfg = model::read_samsr_config(kTiny);
  nn::ResShiftUNet net(cfg.unet);
  nn::init_resshift_weights(*net, 5);
  // The released names and shapes (the fixture's file is the reference's state dict).
  const auto ref = SafeTensorsFile::open(kTiny + "/unet.safetensors");
  std::map<std::string, torch::Tensor> mine;
  for (const auto& p : net->named_parameters(true)) mine[p.key()] = p.value();
  REQUIRE(mine.size() == ref->tensors().size());
  for (const TensorView& v : ref->tensors()) {
    INFO(v.name);
    REQUIRE(mine.count(v.name) == 1);
    CHECK(mine[v.name].sizes().vec() == v.shape);
  }
  // Conv2d and Linear, weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
  // (fan_in = in_channels * kernel area), but each ResBlock's out_layers.3: 0.
  std::vector<torch::Tensor> scaled, tables;
  int zeroed = 0, norms = 0;
  for (const auto& item : net->named_modules("", false)) {
    torch::nn::Module* m = item.value().get();
    INFO(item.key());
    torch::Tensor w, b;
    if (auto* c = dynamic_cast<torch::nn::Conv2dImpl*>(m)) w = c->weight, b = c->bias;
    if (auto* l = dynamic_cast<torch::nn::LinearImpl*>(m)) w = l->weight, b = l->bias;
    if (auto* g = dynamic_cast<torch::nn::GroupNormImpl*>(m)) {
      CHECK(bool(torch::all(g->weight == 1).item<bool>()));
      CHECK(bool(torch::all(g->bias == 0).item<bool>()));
      ++norms;
    }
    if (auto* a = dynamic_cast<nn::SwinWindowAttentionImpl*>(m)) tables.push_back(a->relative_position_bias_table.flatten());
    if (!w.defined()) continue;
    const bool zero = item.key().size() > 13 && item.key().substr(item.key().size() - 13) == ".out_layers.3";
    if (zero) {
      CHECK(w.abs().max().item<double>() == 0);
      CHECK(b.abs().max().item<double>() == 0);
      ++zeroed;
      continue;
    }
    const double bound = 1.0 / std::sqrt(double(w.numel() / w.size(0)));
    CHECK(w.abs().max().item<double>() <= bound);
    CHECK(b.abs().max().item<double>() <= bound);
    if (w.numel() >= 1000) CHECK(w.abs().max().item<double>() >= 0.99 * bound);  // the whole interval is drawn
    scaled.push_back(w.flatten() / bound);
  }
  int resblocks = 0;  // the ResBlocks of the reference's state dict (8 here)
  for (const TensorView& v : ref->tensors()) resblocks += v.name.find(".out_layers.3.weight") != std::string::npos;
  CHECK(resblocks > 0);
  CHECK(zeroed == resblocks);
  CHECK(norms > 0);
  // U(-1, 1) after scaling: mean 0, standard deviation 1/sqrt(3) = 0.5774.
  const torch::Tensor all = torch::cat(scaled);
  INFO("values ", all.numel(), " mean ", all.mean().item<double>(), " std ", all.std().item<double>());
  CHECK(std::abs(all.mean().item<double>()) < 0.01);
  CHECK(all.std().item<double>() == doctest::Approx(1 / std::sqrt(3.0)).epsilon(0.01));
  // trunc_normal_(std = 0.02): mean 0, std 0.02 (98 values per table here).
  const torch::Tensor tb = torch::cat(tables);
  INFO("table values ", tb.numel(), " std ", tb.std().item<double>());
  CHECK(tb.numel() >= 300);
  CHECK(tb.std().item<double>() == doctest::Approx(0.02).epsilon(0.15));
  CHECK(std::abs(tb.mean().item<double>()) < 0.006);
  // The same seed draws the same weights (every process of a run agrees); another seed others.
  nn::ResShiftUNet again(cfg.unet), other(cfg.unet);
  nn::init_resshift_weights(*again, 5);
  nn::init_resshift_weights(*other, 6);
  double same = 0, diff = 0;
  for (const auto& p : again->named_parameters(true)) {
    same = std::max(same, (p.value() - mine[p.key()]).abs().max().item<double>());
    diff = std::max(diff, (other->named_parameters(true)[p.key()] - mine[p.key()]).abs().max().item<double>());
  }
  CHECK(same == 0);
  CHECK(diff > 0.01);
}

TEST_CASE("resshift.init random: trains from a folder without a network and exports one rass-samsr runs") {
  test::TempDir t;
  write_hq(t.path + "/hq", 2);
  const std::string start = t.path + "/start";
  fs::create_directories(start);
  for (const char* f : {"samsr.json", "autoencoder.safetensors"}) fs::copy_file(kTiny + "/" + f, start + "/" + f);
  {
    model::SamsrModelOptions o;
    o.dir = start;
    try {
      model::SamsrModel m(o);
      FAIL("a folder without unet.safetensors loaded");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::bad_input);
      CHECK(std::string(e.what()).find("resshift.init=random") != std::string::npos);
    }
  }
  ojson s = settings(t.path + "/hq");
  s["model"] = start;
  s["init"] = "model";
  CHECK_THROWS_AS(make(s), Error);  // the folder's network is missing
  s["init"] = "random";
  auto stage = make(s);
  auto again = make(s);  // a second process of the same run draws the same start
  const auto g1 = stage->param_groups(), g2 = again->param_groups();
  REQUIRE(g1[0].params.size() == g2[0].params.size());
  for (size_t i = 0; i < g1[0].params.size(); ++i)
    CHECK(bool(torch::equal(g1[0].params[i].second, g2[0].params[i].second)));
  const TrainSummary sum = run_training(*stage, two_steps(t.path + "/run"));
  REQUIRE(sum.losses.size() == 2);
  const std::string out = t.path + "/run/final";
  const auto written = SafeTensorsFile::open(out + "/unet.safetensors");
  CHECK(written->tensors().size() == SafeTensorsFile::open(kTiny + "/unet.safetensors")->tensors().size());
  CHECK(!file_exists(out + "/sam/sam.json"));  // the start had none
  CHECK(read_json_file(out + "/samsr.json")["method"] == "resshift");
  model::SamsrModelOptions o;
  o.dir = out;
  o.steps = 2;
  model::SamsrModel m(o);
  CHECK(m.restore(read_image(kFix + "/nn/samsr_lq.png"), 1, "x", 0, 0).width == 96);
}
