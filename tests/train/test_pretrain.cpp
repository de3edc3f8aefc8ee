// rass-train vae and unet (vae_stage.hpp, unet_stage.hpp) on the tiny SD
// folder tests/fixtures/nn/sd_tiny: the DDPM noising against hand values of
// the scaled_linear schedule, keyed draws (same step and sample -> same t,
// noise, dropout), a few steps of run_training lower each loss on a fixed
// batch, the data layer reads rass-scenes' layout, bad settings stop before
// training, and the exports load as rass-restore loads a model folder.
#include "nn/torch_doctest.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "test_support.hpp"

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/core/json_file.hpp"
#include "rass/io/image_io.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/model/restore.hpp"
#include "rass/nn/ddpm.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/unet_stage.hpp"
#include "rass/train/vae_stage.hpp"

using json = nlohmann::ordered_json;
using namespace rass;
namespace fs = std::filesystem;

namespace {

const std::string kSd = std::string(RASS_FIXTURES) + "/nn/sd_tiny";

// rass-scenes' layout: DIR/images/<key>.png, DIR/captions/<key>.txt,
// DIR/tags/<key>.txt, DIR/manifest.jsonl (caption inline, tags a file).
void make_scenes(const std::string& dir, int n, int size) {
  for (const char* d : {"images", "captions", "tags"}) fs::create_directories(dir + "/" + d);
  std::ofstream manifest(dir + "/manifest.jsonl");
  for (int i = 0; i < n; ++i) {
    Image img(size, size, 3);
    for (int y = 0; y < size; ++y)
      for (int x = 0; x < size; ++x) {
        const bool sky = y < size / 3 + 4 * i;
        for (int k = 0; k < 3; ++k)
          img.u8()[(size_t(y) * size + x) * 3 + k] =
              uint8_t(sky ? 120 + 40 * k : 60 + 30 * k + ((x / 8 + y / 8 + i) % 2) * 50);
      }
    const std::string key = "scene_" + std::to_string(i);
    write_image(dir + "/images/" + key + ".png", img);
    const std::string caption = i % 2 ? "a sky above a wall" : "a building under the sky";
    const std::string tags = i % 2 ? "sky, wall" : "building, sky";
    std::ofstream(dir + "/captions/" + key + ".txt") << caption << "\n";
    std::ofstream(dir + "/tags/" + key + ".txt") << tags << "\n";
    manifest << json{{"image", "images/" + key + ".png"}, {"tags", "tags/" + key + ".txt"}, {"caption", caption},
                     {"key", key}}
                    .dump()
             << "\n";
  }
}

train::StageEnv quiet_env(uint64_t seed = 5) {
  train::StageEnv env;
  env.quiet = true;
  env.threads = 2;
  env.seed = seed;
  return env;
}

train::LoopConfig loop(int64_t steps, double lr) {
  train::LoopConfig c;
  c.steps = steps;
  c.batch = 2;
  c.lr = lr;
  c.weight_decay = 0;
  c.clip_grad_norm = 1.0;
  c.quiet = true;
  c.progress = false;
  return c;
}

template <class Fn>
void expect_error(Fn&& fn, ExitCode code, const std::string& what) {
  try {
    fn();
    FAIL("no error; expected: " << what);
  } catch (const Error& e) {
    CHECK_MESSAGE(e.code() == code, e.what());
    CHECK_MESSAGE(std::string(e.what()).find(what) != std::string::npos, e.what());
  }
}

}  // namespace

TEST_CASE("pretrain: the noising formula and the schedule against hand values") {
  // scaled_linear: beta_i = (sqrt(b0) + i (sqrt(b1) - sqrt(b0)) / (T - 1))^2, a_t = prod_{i<=t} (1 - beta_i).
  const nn::DdpmSchedule s = nn::make_ddpm_schedule(0.00085, 0.012, 1000, "scaled_linear");
  const double r0 = std::sqrt(0.00085), r1 = std::sqrt(0.012);
  double a = 1;
  std::vector<double> hand;
  for (int i = 0; i < 1000; ++i) {
    const double b = std::pow(r0 + i * (r1 - r0) / 999.0, 2);
    a *= 1 - b;
    hand.push_back(a);
  }
  CHECK(s.alpha_bar(0) == doctest::Approx(0.99915).epsilon(1e-7));
  for (int t : {1, 10, 500, 999}) CHECK(s.alpha_bar(t) == doctest::Approx(hand[size_t(t)]).epsilon(1e-4));
  // z_t = sqrt(a) z + sqrt(1 - a) eps, one a per sample.
  const torch::Tensor z = torch::full({2, 1, 1, 2}, 2.0), eps = torch::full({2, 1, 1, 2}, 1.0);
  const torch::Tensor zt = train::add_noise(z, eps, torch::tensor({0.25f, s.alpha_bar(999)}));
  CHECK(zt[0][0][0][0].item<double>() == doctest::Approx(0.5 * 2 + std::sqrt(0.75)).epsilon(1e-6));
  CHECK(zt[1][0][0][1].item<double>() ==
        doctest::Approx(std::sqrt(hand[999]) * 2 + std::sqrt(1 - hand[999])).epsilon(1e-4));
}

TEST_CASE("pretrain: draws are keyed by (seed, step, sample)") {
  const std::vector<int64_t> shape{4, 8, 8};
  const train::UnetDraws a = train::unet_draws(7, train::sample_draw_key(3, 1), 1000, 0.1, shape);
  const train::UnetDraws b = train::unet_draws(7, train::sample_draw_key(3, 1), 1000, 0.1, shape);
  const train::UnetDraws c = train::unet_draws(7, train::sample_draw_key(3, 2), 1000, 0.1, shape);
  const train::UnetDraws d = train::unet_draws(8, train::sample_draw_key(3, 1), 1000, 0.1, shape);
  CHECK(a.timestep == b.timestep);
  CHECK(torch::equal(a.noise, b.noise));
  CHECK(torch::equal(a.vae_noise, b.vae_noise));
  CHECK(a.drop_prompt == b.drop_prompt);
  CHECK_FALSE(torch::equal(a.noise, c.noise));
  CHECK_FALSE(torch::equal(a.noise, d.noise));
  CHECK_FALSE(torch::equal(a.noise, a.vae_noise));
  // t uniform over [0, T), dropout with its probability, noise N(0, 1).
  int dropped = 0, low = 0;
  int64_t tmin = 1000, tmax = -1;
  for (int g = 0; g < 4000; ++g) {
    const train::UnetDraws x = train::unet_draws(1, train::sample_draw_key(0, g), 1000, 0.1, {1});
    dropped += x.drop_prompt;
    low += x.timestep < 500;
    tmin = std::min(tmin, x.timestep);
    tmax = std::max(tmax, x.timestep);
    CHECK_FALSE(train::unet_draws(1, train::sample_draw_key(0, g), 1000, 0.0, {1}).drop_prompt);
    CHECK(train::unet_draws(1, train::sample_draw_key(0, g), 1000, 1.0, {1}).drop_prompt);
  }
  CHECK(tmin >= 0);
  CHECK(tmax <= 999);
  CHECK(tmax >= 990);
  CHECK(dropped / 4000.0 == doctest::Approx(0.1).epsilon(0.2));  // +-0.02, ~4 sd
  CHECK(low / 4000.0 == doctest::Approx(0.5).epsilon(0.06));
  const torch::Tensor n = train::unet_draws(1, "big", 1000, 0.1, {4, 64, 64}).noise;
  CHECK(n.mean().item<double>() == doctest::Approx(0).epsilon(0.02).scale(1));
  CHECK(n.std().item<double>() == doctest::Approx(1).epsilon(0.02));
}

TEST_CASE("pretrain: the data layer reads rass-scenes' folders and manifest") {
  test::TempDir tmp;
  make_scenes(tmp.path, 3, 72);
  train::PretrainDataConfig c;
  c.images = tmp.path + "/images";
  c.text = train::TextSource::caption;
  c.crop = 64;
  const train::PretrainData by_dir(c);
  REQUIRE(by_dir.size() == 3);
  CHECK(by_dir.items()[1].text == "a sky above a wall");
  c.text = train::TextSource::tags;
  CHECK(train::PretrainData(c).items()[0].text == "building, sky");
  train::PretrainDataConfig m;
  m.manifest = tmp.path + "/manifest.jsonl";
  m.text = train::TextSource::tags;
  m.crop = 64;
  const train::PretrainData by_manifest(m);
  CHECK(by_manifest.items()[1].text == "sky, wall");
  CHECK(by_manifest.items()[1].key == "scene_1");
  // A sample is a keyed crop in [-1, 1]; the same key gives the same crop.
  const train::PretrainSample s1 = by_dir.sample(0, 4, 1), s2 = by_dir.sample(0, 4, 1);
  CHECK(s1.image.sizes() == torch::IntArrayRef({3, 64, 64}));
  CHECK(torch::equal(s1.image, s2.image));
  CHECK(s1.image.min().item<float>() >= -1);
  CHECK(s1.image.max().item<float>() <= 1);
  c.crop = 80;
  expect_error([&] { train::PretrainData(c).sample(0, 0, 0); }, ExitCode::bad_input, "smaller than crop_size 80");
  fs::remove(tmp.path + "/tags/scene_2.txt");
  c.crop = 64;
  expect_error([&] { train::PretrainData{c}; }, ExitCode::bad_input, "tags/scene_2.txt");
}

TEST_CASE("pretrain: one step's loss and gradients equal diffusers'") {
  const std::string fx = std::string(RASS_FIXTURES) + "/train/pretrain_grad.safetensors";
  auto f = SafeTensorsFile::open(fx);
  auto T = [&](const std::string& n) {
    const TensorView* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, fx);
  };
  test::TempDir tmp;
  make_scenes(tmp.path, 1, 64);
  const torch::Tensor x = T("x");
  const json prompts = json::parse(f->metadata().at("prompts"));
  std::vector<train::PretrainSample> samples(2);
  for (int b = 0; b < 2; ++b) {
    samples[size_t(b)].image = x[b].contiguous();
    samples[size_t(b)].text = prompts[size_t(b)].get<std::string>();
  }
  auto compare = [&](const std::vector<std::pair<std::string, torch::Tensor>>& params, const std::string& prefix) {
    size_t n = 0;
    double worst = 0, largest = 0;
    for (const auto& [name, p] : params) largest = std::max(largest, T(prefix + name).abs().max().item<double>());
    for (const auto& [name, p] : params) {
      CAPTURE(name);
      REQUIRE(p.grad().defined());
      const torch::Tensor ref = T(prefix + name);
      const double scale = ref.abs().max().item<double>(), err = (p.grad() - ref).abs().max().item<double>();
      // Relative to the tensor, with a floor relative to the largest gradient:
      // the attention key biases' true gradient is zero (softmax ignores a
      // shift shared by all keys), so both sides hold only rounding there.
      CHECK_MESSAGE(err <= 1e-3 * scale + 1e-6 * largest, name << ": max |diff| " << err << ", max |ref| " << scale);
      if (scale > 1e-3 * largest) worst = std::max(worst, err / scale);
      ++n;
    }
    MESSAGE(prefix << ": " << n << " tensors, worst relative difference " << worst);
    return n;
  };
  {
    train::VaeStage vae({{"sd", kSd}, {"images", tmp.path + "/images"}, {"crop_size", 64},
                         {"kl_weight", std::stod(f->metadata().at("kl_weight"))}},
                        quiet_env());
    const torch::Tensor noise = T("vae.noise");
    const train::VaeLoss l = vae.forward_loss(samples, {noise[0], noise[1]});
    CHECK(l.loss.item<double>() == doctest::Approx(T("vae.loss").item<double>()).epsilon(1e-5));
    l.loss.backward();
    CHECK(compare(vae.trainable(), "vae.grad.") == vae.trainable().size());
  }
  {
    train::UnetStage unet({{"sd", kSd}, {"images", tmp.path + "/images"}, {"crop_size", 64}, {"text", "none"}},
                          quiet_env());
    const torch::Tensor noise = T("unet.noise"), vn = T("unet.vae_noise"), t = T("unet.t");
    std::vector<train::UnetDraws> draws(2);
    for (int b = 0; b < 2; ++b) {
      draws[size_t(b)].timestep = t[b].item<int64_t>();
      draws[size_t(b)].noise = noise[b];
      draws[size_t(b)].vae_noise = vn[b];
    }
    const torch::Tensor l = unet.forward_loss(samples, draws);
    CHECK(l.item<double>() == doctest::Approx(T("unet.loss").item<double>()).epsilon(1e-5));
    l.backward();
    CHECK(compare(unet.trainable(), "unet.grad.") == unet.trainable().size());
  }
}

TEST_CASE("pretrain: rass-train vae lowers its loss, and its export loads") {
  test::TempDir tmp;
  make_scenes(tmp.path, 2, 72);
  const json s = {{"sd", kSd}, {"images", tmp.path + "/images"}, {"crop_size", 64}};
  train::VaeStage stage(s, quiet_env());
  train::StepContext ctx;
  ctx.global_batch = ctx.local_batch = 2;
  const std::vector<train::PretrainSample> fixed = stage.make_samples(ctx);
  auto eval = [&] {
    torch::NoGradGuard ng;
    return stage.forward_loss(fixed);
  };
  const train::VaeLoss before = eval();
  // The loss is LDM's: per-image sums of |x - x_hat| plus 1e-6 KL, batch mean.
  CHECK(before.loss.item<double>() ==
        doctest::Approx(before.rec.item<double>() * 3 * 64 * 64 + 1e-6 * before.kl.item<double>()).epsilon(1e-4));
  CHECK(before.kl.item<double>() > 0);
  const train::TrainSummary sum = train::run_training(stage, loop(8, 2e-3));
  CHECK(sum.steps_done == 8);
  const train::VaeLoss after = eval();
  MESSAGE("vae: rec on the fixed batch " << before.rec.item<double>() << " -> " << after.rec.item<double>());
  CHECK(after.rec.item<double>() < before.rec.item<double>());

  const std::string out = tmp.path + "/export";
  stage.export_model(out);
  stage.export_model(out + "/");  // replaces the earlier export
  model::RestoreModelOptions o;
  o.dir = out;
  o.quiet = true;
  const model::RestoreModel loaded(o);
  std::map<std::string, torch::Tensor> w;
  for (const auto& p : loaded.vae->named_parameters()) w[p.key()] = p.value();
  for (auto& [name, t] : stage.trainable()) CHECK_MESSAGE(torch::equal(w.at(name), t.detach()), name);
  // The untouched components are the source's files (hard-linked or copied).
  const std::string u = "/unet/diffusion_pytorch_model.safetensors";
  CHECK(read_file_bytes(out + u) == read_file_bytes(kSd + u));
  CHECK(std::distance(fs::directory_iterator(tmp.path), fs::directory_iterator()) == 5);  // no temporaries left
}

TEST_CASE("pretrain: rass-train unet lowers its loss on a fixed batch, and its export loads") {
  test::TempDir tmp;
  make_scenes(tmp.path, 2, 72);
  const json s = {{"sd", kSd}, {"images", tmp.path + "/images"}, {"crop_size", 64}, {"text", "caption"},
                  {"cfg_dropout", 0.5}};
  train::UnetStage stage(s, quiet_env());
  train::StepContext ctx;
  ctx.global_batch = ctx.local_batch = 2;
  const std::vector<train::PretrainSample> fixed = stage.make_samples(ctx);
  for (const auto& f : fixed) {
    const std::string p = stage.prompt_of(f);
    CHECK((p.empty() || p == f.text));
    CHECK(p == stage.prompt_of(f));
  }
  int dropped = 0;
  for (int g = 0; g < 40; ++g) {
    ctx.step = g;
    for (const auto& f : stage.make_samples(ctx)) dropped += stage.prompt_of(f).empty();
  }
  CHECK(dropped > 10);
  CHECK(dropped < 70);
  auto eval = [&] {
    torch::NoGradGuard ng;
    return stage.forward_loss(fixed).item<double>();
  };
  const double before = eval();
  CHECK(eval() == before);  // keyed draws: the same step, the same loss
  const train::TrainSummary sum = train::run_training(stage, loop(10, 1e-3));
  CHECK(sum.steps_done == 10);
  const double after = eval();
  MESSAGE("unet: loss on the fixed batch " << before << " -> " << after);
  CHECK(after < before);

  const std::string out = tmp.path + "/export";
  stage.export_model(out);
  model::RestoreModelOptions o;
  o.dir = out;
  o.quiet = true;
  const model::RestoreModel loaded(o);
  std::map<std::string, torch::Tensor> w;
  for (const auto& p : loaded.unet->named_parameters()) w[p.key()] = p.value();
  for (auto& [name, t] : stage.trainable()) CHECK_MESSAGE(torch::equal(w.at(name), t.detach()), name);
  const std::string v = "/vae/diffusion_pytorch_model.safetensors";
  CHECK(read_file_bytes(out + v) == read_file_bytes(kSd + v));
}

TEST_CASE("pretrain: bad settings stop before training, naming what is wrong") {
  test::TempDir tmp;
  make_scenes(tmp.path, 1, 64);
  const json base = {{"sd", kSd}, {"images", tmp.path + "/images"}, {"crop_size", 64}};
  auto with = [&](const char* k, json v) {
    json s = base;
    s[k] = std::move(v);
    return s;
  };
  expect_error([&] { train::VaeStage(with("loss", "l2"), quiet_env()); }, ExitCode::usage, "loss must be");
  expect_error([&] { train::VaeStage(with("bogus", 1), quiet_env()); }, ExitCode::usage, "unknown vae setting 'bogus'");
  expect_error([&] { train::VaeStage(with("crop_size", 60), quiet_env()); }, ExitCode::usage, "factor 8");
  expect_error([&] { train::VaeStage(with("sd", ""), quiet_env()); }, ExitCode::usage, "vae setting sd");
  expect_error([&] { train::UnetStage(with("text", "words"), quiet_env()); }, ExitCode::usage, "text must be");
  expect_error([&] { train::UnetStage(with("cfg_dropout", 1.5), quiet_env()); }, ExitCode::usage, "cfg_dropout");
  expect_error([&] { train::UnetStage(with("images", tmp.path + "/none"), quiet_env()); }, ExitCode::bad_input,
               "images is not a folder");
  // A v-prediction scheduler is refused by name.
  const std::string sd = tmp.path + "/sd";
  fs::copy(kSd, sd, fs::copy_options::recursive);
  json sc = read_json_file(sd + "/scheduler/scheduler_config.json");
  sc["prediction_type"] = "v_prediction";
  std::ofstream(sd + "/scheduler/scheduler_config.json") << sc.dump();
  expect_error([&] { train::UnetStage(with("sd", sd), quiet_env()); }, ExitCode::bad_input,
               "trains epsilon prediction only");
}
