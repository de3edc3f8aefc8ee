// rass-train scr (scr_stage.hpp) on the tiny SD folder tests/fixtures/nn/sd_tiny:
// the gradient of every trainable tensor after one step equals diffusers +
// peft's (tests/train/make_scr_fixture.py), a few steps of run_training
// lower the loss on a fixed batch, bad settings stop before training, and the
// exported LoRA loads as rass-restore loads it.
#include "nn/torch_doctest.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iterator>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/config.hpp"
#include "rass/model/lora_io.hpp"
#include "rass/nn/lora.hpp"
#include "rass/nn/unet.hpp"
#include "rass/text/caption_map.hpp"
#include "rass/text/caption_pack.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/scr_stage.hpp"

using json = nlohmann::ordered_json;
using namespace rass;

namespace {

const std::string kSd = std::string(RASS_FIXTURES) + "/nn/sd_tiny";

// n items of size x size: images whose colour follows a label map of three
// classes (a top band "sky", a square "building", the rest "wall"), and
// their caption-map packs (prompt style rass, the sd_tiny tokenizer).
void make_dataset(const std::string& dir, int n, int size, bool with_masks = true) {
  std::filesystem::create_directories(dir + "/hq");
  std::filesystem::create_directories(dir + "/packs");
  const std::vector<std::string> classes = {"wall", "building", "sky"};
  const text::ClipTokenizer tok = text::ClipTokenizer::load(kSd + "/tokenizer");
  const uint8_t colour[3][3] = {{200, 180, 150}, {90, 60, 50}, {80, 140, 230}};
  for (int i = 0; i < n; ++i) {
    text::LabelMap map;
    map.width = map.height = size;
    map.pixels.assign(3, 0);
    Image img(size, size, 3);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        int c = y < size / 4 + 3 * i ? 2 : (x > size / 3 && x < size / 3 + size / 3 + 2 * i && y > size / 2) ? 1 : 0;
        if (!with_masks) c = -1;
        map.labels.push_back(c);
        if (c >= 0) map.pixels[size_t(c)]++;
        for (int k = 0; k < 3; ++k)
          img.u8()[(size_t(y) * size + x) * 3 + k] = uint8_t(colour[c < 0 ? 0 : c][k] + ((x * 7 + y * 3 + k * 11) % 23));
      }
    const std::string key = "img" + std::to_string(i);
    write_image(dir + "/hq/" + key + ".png", img);
    std::vector<text::TagMatch> tags;
    const text::CaptionMap cm = text::build_caption_map(map, classes, tags, text::PromptStyle::rass, &tok);
    write_file_atomic(dir + "/packs/" + key + ".h5",
                      text::caption_pack_bytes(cm, map, classes, {key, key + ".png", "rass", "table", 0.5}));
  }
}

json settings(const std::string& data, int crop) {
  return json{{"sd", kSd},          {"hq_dir", data + "/hq"}, {"pack_dir", data + "/packs"},
              {"crop_size", crop},  {"w_lpips", 0.0}};
}

train::StageEnv quiet_env(uint64_t seed = 3) {
  train::StageEnv env;
  env.quiet = true;
  env.threads = 2;
  env.seed = seed;
  return env;
}

}  // namespace

TEST_CASE("scr: the gradients of one step equal diffusers + peft's") {
  const std::string fx = std::string(RASS_FIXTURES) + "/train/scr_grad.safetensors";
  auto f = SafeTensorsFile::open(fx);
  auto T = [&](const std::string& n) {
    const TensorView* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, fx);
  };
  const json positions = json::parse(f->metadata().at("positions"));
  test::TempDir tmp;
  make_dataset(tmp.path, 1, 64);
  // Two runs: the paper's form (t = 1, residual) and OSEDiff's (t = 999, ddpm).
  for (const std::string prefix : {"", "ddpm."}) {
    CAPTURE(prefix);
    const json meta_settings = json::parse(f->metadata().at(prefix.empty() ? "settings" : "settings_ddpm"));
    json s = settings(tmp.path, 64);
    for (const char* k : {"timestep", "formula", "w_mse", "w_lpips", "lambda_region", "lambda_pixel"}) s[k] = meta_settings[k];
    s["lpips_weights"] = std::string(RASS_FIXTURES) + "/iqa/lpips_vgg.safetensors";
    train::ScrStage stage(s, quiet_env());
    // The reference's initial values, under the same names.
    size_t n = 0;
    {
      torch::NoGradGuard ng;
      for (auto& [name, t] : stage.trainable()) {
        t.copy_(T("init." + name));
        ++n;
      }
    }
    size_t in_fixture = 0;
    for (const TensorView& v : f->tensors()) in_fixture += v.name.rfind("init.", 0) == 0;
    CHECK(n == in_fixture);  // the same trainable set: 73 LoRA layers x (A, B) + conv_in weight and bias
    CHECK(n == 148);

    std::vector<train::ScrSample> samples(2);
    std::vector<torch::Tensor> noise;
    const torch::Tensor lq = T("lq"), hq = T("hq"), ids = T("ids"), nz = T("noise");
    for (int64_t b = 0; b < 2; ++b) {
      samples[b].key = "b" + std::to_string(b);
      samples[b].lq = lq[b];
      samples[b].hq = hq[b];
      for (int64_t i = 0; i < ids.size(1); ++i) samples[b].ids.push_back(ids[b][i].item<int64_t>());
      for (size_t t = 0; t < positions[b].size(); ++t) {
        train::SclTarget tg;
        tg.positions = positions[b][t].get<std::vector<int64_t>>();
        tg.mask = T("masks." + std::to_string(b) + "." + std::to_string(t));
        samples[b].targets.push_back(tg);
      }
      noise.push_back(nz[b]);
    }
    const train::ScrLoss l = stage.forward_loss(samples, noise);
    CHECK(l.mse.item<double>() == doctest::Approx(T(prefix + "mse").item<double>()).epsilon(1e-5));
    REQUIRE(l.lpips.defined());
    CHECK(l.lpips.item<double>() == doctest::Approx(T(prefix + "lpips").item<double>()).epsilon(1e-5));
    CHECK(l.region.item<double>() == doctest::Approx(T(prefix + "region").item<double>()).epsilon(1e-5));
    CHECK(l.pixel.item<double>() == doctest::Approx(T(prefix + "pixel").item<double>()).epsilon(1e-5));
    CHECK(l.loss.item<double>() == doctest::Approx(T(prefix + "loss").item<double>()).epsilon(1e-5));
    l.loss.backward();
    // Tolerance: float32 through a UNet, a VAE decoder and back; each tensor's
    // gradient to 1e-3 of its largest entry (plus 1e-7 absolute for tensors
    // whose gradient is all but zero). Measured here (LibTorch 1.13 CPU against
    // torch 2.1.2 CPU): at most 7.9e-5 (residual), 3.3e-4 (ddpm, t = 999: the
    // 1/sqrt(a_t) = 14.6 factor amplifies rounding); the margin is for other BLAS builds.
    double worst = 0;
    std::string worst_name;
    for (auto& [name, t] : stage.trainable()) {
      REQUIRE_MESSAGE(t.grad().defined(), name);
      const torch::Tensor ref = T(prefix + "grad." + name);
      const double scale = ref.abs().max().item<double>();
      const double err = (t.grad() - ref).abs().max().item<double>();
      const double rel = err / (scale + 1e-7);
      if (rel > worst) worst = rel, worst_name = name;
      CHECK_MESSAGE(err <= 1e-3 * scale + 1e-7, name << ": max |diff| " << err << ", max |ref| " << scale);
    }
    MESSAGE(prefix << "worst relative gradient difference " << worst << " (" << worst_name << ")");
  }
}

TEST_CASE("scr: a few steps of run_training lower the loss on a fixed batch") {
  test::TempDir tmp;
  make_dataset(tmp.path, 3, 72);
  json s = settings(tmp.path, 64);
  s["lambda_region"] = 1e-2;  // larger than the paper's, so the SCL terms move within a few steps
  s["lambda_pixel"] = 1e-3;
  train::ScrStage stage(s, quiet_env());
  CHECK(stage.adapter_layers().at("default_encoder").size() == 19);
  CHECK(stage.adapter_layers().at("default_decoder").size() == 38);
  CHECK(stage.adapter_layers().at("default_others").size() == 16);
  train::StepContext ctx;
  ctx.step = 0;
  ctx.global_batch = ctx.local_batch = 2;
  const std::vector<train::ScrSample> fixed = stage.make_samples(ctx);
  REQUIRE(!fixed[0].targets.empty());
  auto eval = [&] {
    torch::NoGradGuard ng;
    return stage.forward_loss(fixed).loss.item<double>();
  };
  const double before = eval();
  // The same step twice: the same samples (keyed draws), bit for bit.
  const std::vector<train::ScrSample> again = stage.make_samples(ctx);
  CHECK(torch::equal(again[1].lq, fixed[1].lq));
  CHECK(again[1].draw == "step 0 sample 1");
  train::LoopConfig c;
  c.steps = 6;
  c.batch = 2;
  c.lr = 2e-3;
  c.weight_decay = 1e-2;
  c.clip_grad_norm = 1.0;
  const auto t0 = std::chrono::steady_clock::now();
  const train::TrainSummary sum = train::run_training(stage, c);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("run_training: " << secs / 6 << " s/step (crop 64, batch 2, data and degradation included)");
  CHECK(sum.steps_done == 6);
  const double after = eval();
  MESSAGE("loss on the fixed batch: " << before << " -> " << after);
  CHECK(after < before);

  // Export: a folder with the LoRA file and rass.json, loadable as rass-restore loads --lora.
  const std::string out = tmp.path + "/export";
  stage.export_model(out);
  const json form = read_json_file(out + "/rass.json");
  CHECK(form["method"] == "scr");
  CHECK(form["timestep"] == 1);
  CHECK(form["formula"] == "residual");
  CHECK(form["prompt_style"] == "rass");
  nn::UNet2DCondition fresh(model::read_unet_config(kSd + "/unet/config.json"));
  model::load_component(*fresh, kSd + "/unet");
  const model::LoraLoadReport rep = model::load_lora_file(*fresh, out + "/scr.unet.safetensors", 1.0, 0, "UNet", "");
  CHECK(rep.adapters.at("default_encoder") == 19);
  CHECK(rep.adapters.at("default_decoder") == 38);
  CHECK(rep.adapters.at("default_others") == 16);
  CHECK(rep.full_weights.size() == 2);
  CHECK_FALSE(rep.alpha_guessed);
  // The loaded weights are the trained ones.
  std::map<std::string, torch::Tensor> loaded;
  for (const auto& p : fresh->named_parameters()) loaded[p.key()] = p.value();
  for (auto& [name, t] : stage.trainable()) CHECK_MESSAGE(torch::equal(loaded.at(name), t.detach()), name);
  stage.export_model(out + "/");  // replacing an earlier export (a trailing '/' names the same folder)
  CHECK(std::filesystem::exists(out + "/scr.unet.safetensors"));
  CHECK(std::distance(std::filesystem::directory_iterator(tmp.path), std::filesystem::directory_iterator()) == 3);  // hq, packs, export: no temporaries left
  // RASS_TEST_KEEP_SCR_EXPORT=DIR keeps a copy, to try it with rass-restore / rass-merge-lora by hand.
  if (const char* keep = std::getenv("RASS_TEST_KEEP_SCR_EXPORT"); keep && *keep)
    std::filesystem::copy(out, keep, std::filesystem::copy_options::recursive | std::filesystem::copy_options::overwrite_existing);
}

TEST_CASE("scr: bad settings stop before training, naming what is wrong") {
  test::TempDir tmp;
  make_dataset(tmp.path, 2, 64);
  auto fails = [&](json s, ExitCode code, const std::string& what) {
    try {
      train::ScrStage stage(s, quiet_env());
      FAIL("no error for " << what);
    } catch (const Error& e) {
      CHECK_MESSAGE(e.code() == code, e.what());
      CHECK_MESSAGE(std::string(e.what()).find(what) != std::string::npos, e.what());
    }
  };
  json s = settings(tmp.path, 64);
  json t = s;
  t["lora_targets"] = {"to_q", "no_such_layer"};
  fails(t, ExitCode::usage, "'no_such_layer' match no LoRA-capable layer");
  t = s;
  t["scl_layers"] = {"attn7"};
  fails(t, ExitCode::usage, "'attn7' match no cross-attention layer");
  t = s;
  t["formula"] = "euler";
  fails(t, ExitCode::usage, "formula");
  t = s;
  t["sd"] = tmp.path + "/nothing";
  fails(t, ExitCode::bad_input, tmp.path + "/nothing");
  t = s;
  t["pack_dir"] = "";
  fails(t, ExitCode::usage, "SCL needs caption-map packs");
  t = s;
  t["crop_size"] = 128;
  fails(t, ExitCode::bad_input, "smaller than crop_size 128");
  t = s;
  t["typo"] = 1;
  fails(t, ExitCode::usage, "unknown scr setting 'typo'");
  // Packs without any mask (label maps all "ignore"): SCL has nothing to learn from.
  test::TempDir empty;
  make_dataset(empty.path, 2, 64, false);
  fails(settings(empty.path, 64), ExitCode::bad_input, "SCL is on but no pack");
  json off = settings(empty.path, 64);
  off["scl"] = false;
  train::ScrStage ok(off, quiet_env());  // --no-scl trains on them
  CHECK(ok.data().size() == 2);
}

// stage.hpp's contract: two processes with one sample each (sample_offset 0
// and 1) average to one process with both samples. Every loss term is a
// per-sample mean (SCL too, whatever each sample's map count), so the terms
// average exactly; the gradients are compared at the paper's lambdas: the SCL
// gradient goes through min-max normalisation of nearly flat maps (random
// weights), 1/(max - min) amplifies the float32 differences of batch-2 and
// batch-1 kernels, so its share is checked through the loss values instead.
TEST_CASE("scr: a batch's loss and gradient are the means of its halves'") {
  torch::manual_seed(0);
  test::TempDir tmp;
  make_dataset(tmp.path, 3, 72);
  json s = settings(tmp.path, 64);
  train::ScrStage stage(s, quiet_env());
  {
    torch::NoGradGuard ng;  // non-zero B, so every LoRA tensor has a gradient
    for (auto& [name, t] : stage.trainable())
      if (name.find("lora_B") != std::string::npos) t.normal_(0, 0.05);
  }
  struct Out {
    std::vector<torch::Tensor> g;
    std::map<std::string, double> terms;
  };
  auto run = [&](int64_t local, int64_t offset) {
    for (auto& [n, t] : stage.trainable()) t.mutable_grad() = torch::Tensor();
    train::StepContext c;
    c.step = 4;
    c.global_batch = 2;
    c.local_batch = local;
    c.sample_offset = offset;
    const train::StepLoss l = stage.compute_loss(c);
    l.loss.backward();
    Out o;
    for (auto& [n, t] : stage.trainable()) o.g.push_back(t.grad().clone());
    for (auto& [k, v] : l.terms) o.terms[k] = v;
    return o;
  };
  const Out both = run(2, 0), first = run(1, 0), second = run(1, 1);
  for (const char* k : {"loss", "mse", "l_region", "l_pixel"}) {
    CAPTURE(k);
    CHECK(both.terms.at(k) == doctest::Approx((first.terms.at(k) + second.terms.at(k)) / 2).epsilon(1e-5));
  }
  CHECK(both.terms.at("l_region") > 0);
  double worst = 0;
  for (size_t i = 0; i < both.g.size(); ++i) {
    const torch::Tensor mean = (first.g[i] + second.g[i]) / 2;
    const double scale = both.g[i].abs().max().item<double>();
    const double err = (mean - both.g[i]).abs().max().item<double>();
    worst = std::max(worst, err / (scale + 1e-12));
    CHECK(err <= 1e-3 * scale + 1e-9);
  }
  MESSAGE("two halves vs one batch: worst relative gradient difference " << worst);
}

TEST_CASE("scr: without LPIPS weights the run says so at the start") {
  test::TempDir tmp;
  make_dataset(tmp.path, 1, 64);
  const std::string log = tmp.path + "/stderr.txt";
  std::fflush(stderr);
  const int saved = ::dup(2);
  FILE* f = std::fopen(log.c_str(), "w");
  ::dup2(::fileno(f), 2);
  train::StageEnv env = quiet_env();
  env.quiet = false;
  {
    train::ScrStage stage(settings(tmp.path, 64), env);
  }
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(f);
  std::ifstream in(log);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("rass-train: scr: no lpips_weights: the restoration loss is MSE only (w_lpips 0 unused)") ==
        std::string::npos);  // settings() sets w_lpips 0: nothing to say
  CHECK(text.find("LoRA rank 4 alpha 8 on 73 layers (encoder 19, decoder 38, others 16), conv_in trained") !=
        std::string::npos);
  std::ofstream(log, std::ios::trunc).close();
  f = std::fopen(log.c_str(), "w");
  const int saved2 = ::dup(2);
  ::dup2(::fileno(f), 2);
  {
    json s = settings(tmp.path, 64);
    s.erase("w_lpips");  // the default 2 without weights
    train::ScrStage stage(s, env);
  }
  std::fflush(stderr);
  ::dup2(saved2, 2);
  ::close(saved2);
  std::fclose(f);
  std::ifstream in2(log);
  const std::string text2((std::istreambuf_iterator<char>(in2)), std::istreambuf_iterator<char>());
  CHECK_MESSAGE(text2.find("rass-train: scr: no lpips_weights: the restoration loss is MSE only (w_lpips 2 unused)") !=
                    std::string::npos,
                text2);
}

// --resume of rass-train scr continues bit for bit: stopped after 2 of 4 steps
// and resumed in a fresh stage object, the step-4 checkpoint has the bytes of
// an uninterrupted run's (crops, flips, degradations and VAE samples keyed by
// (seed, step, sample); the LoRA init keyed by the seed).
TEST_CASE("scr: resume after 2 of 4 steps equals the uninterrupted run byte for byte") {
  test::TempDir tmp;
  make_dataset(tmp.path, 3, 72);
  const json s = settings(tmp.path, 64);
  auto cfg = [&](const std::string& out) {
    train::LoopConfig c;
    c.steps = 4;
    c.batch = 2;
    c.lr = 1e-3;
    c.clip_grad_norm = 1.0;
    c.seed = 3;
    c.checkpoint_every = 2;
    c.keep_checkpoints = 10;
    c.out_dir = out;
    c.quiet = true;
    c.config = {{"stage", "scr"}, {"scr", s}};
    return c;
  };
  auto bytes = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  };
  const std::string a = tmp.path + "/a", b = tmp.path + "/b";
  torch::manual_seed(0);
  train::ScrStage sa(s, quiet_env());
  const train::TrainSummary full = train::run_training(sa, cfg(a));
  train::LoopConfig cb = cfg(b);
  cb.stop_after = 2;
  {
    torch::manual_seed(0);
    train::ScrStage sb(s, quiet_env());
    train::run_training(sb, cb);
  }
  cb.stop_after = 0;
  cb.resume = true;
  torch::manual_seed(0);
  train::ScrStage sb2(s, quiet_env());
  const train::TrainSummary second = train::run_training(sb2, cb);
  CHECK(second.start_step == 2);
  REQUIRE(second.losses.size() == 2);
  CHECK(second.losses[0] == full.losses[2]);
  CHECK(second.losses[1] == full.losses[3]);
  const std::vector<char> fa = bytes(a + "/checkpoints/step_4.safetensors");
  CHECK(!fa.empty());
  CHECK(fa == bytes(b + "/checkpoints/step_4.safetensors"));
  CHECK(bytes(a + "/final/scr.unet.safetensors") == bytes(b + "/final/scr.unet.safetensors"));
}
