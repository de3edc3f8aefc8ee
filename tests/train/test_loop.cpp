// The shared training loop (lib/rass/train/loop.cpp): learning-rate schedule
// by hand, AdamW and clipping against LibTorch's own torch::optim::AdamW and
// clip_grad_norm_, checkpoints, --resume byte for byte, a killed run, another
// configuration refused, a non-finite loss.
#include "nn/torch_doctest.hpp"  // first: drops c10's glog-style CHECK

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <torch/torch.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/train_checkpoint.hpp"
#include "rass/train/train_config.hpp"
#include "test_support.hpp"
#include "train/train_test_util.hpp"

using namespace rass;
using namespace rass::train;

TEST_CASE("learning rate: constant, poly and linear warmup, by hand") {
  LoopConfig c;
  c.lr = 0.1;
  c.steps = 10;
  CHECK(learning_rate(c, 7) == doctest::Approx(0.1));
  c.schedule = "poly";
  c.poly_power = 0.9;
  // 0.5^0.9 = exp(0.9 ln 0.5) = exp(-0.6238325) = 0.5358867
  CHECK(learning_rate(c, 5) == doctest::Approx(0.05358867).epsilon(1e-6));
  CHECK(learning_rate(c, 0) == doctest::Approx(0.1));
  c.schedule = "constant";
  c.warmup_steps = 4;
  c.warmup_factor = 0.001;
  // step 1: a = 1/4, factor 0.001 * 0.75 + 0.25 = 0.25075
  CHECK(learning_rate(c, 1) == doctest::Approx(0.025075).epsilon(1e-9));
  CHECK(learning_rate(c, 0) == doctest::Approx(0.0001).epsilon(1e-9));
  CHECK(learning_rate(c, 4) == doctest::Approx(0.1));
}

TEST_CASE("learning rate: cosine after the warmup to lr_min (ResShift v3's CosineAnnealingLR), by hand") {
  LoopConfig c;
  c.lr = 0.1;
  c.lr_min = 0.02;
  c.steps = 10;
  c.schedule = "cosine";
  c.warmup_steps = 2;
  c.warmup_factor = 0;  // ResShift's warmup from 0
  // ResShift's trainer sets lr = k / W * base after its step k <= W (here
  // step k has lr k / W * base), then steps CosineAnnealingLR(T_max = steps -
  // W = 8, eta_min 0.02): after j scheduler steps 0.02 + 0.08 (1 + cos(pi j / 8)) / 2.
  CHECK(learning_rate(c, 1) == doctest::Approx(0.05).epsilon(1e-12));
  CHECK(learning_rate(c, 2) == doctest::Approx(0.1).epsilon(1e-12));
  // j = 2: cos(pi / 4) = 0.70710678; 0.02 + 0.04 * 1.70710678 = 0.08828427
  CHECK(learning_rate(c, 4) == doctest::Approx(0.0882842712).epsilon(1e-9));
  CHECK(learning_rate(c, 6) == doctest::Approx(0.06).epsilon(1e-12));   // j = 4: cos(pi / 2) = 0
  CHECK(learning_rate(c, 10) == doctest::Approx(0.02).epsilon(1e-12));  // j = 8: the end, lr_min
  // j = 7: cos(7 pi / 8) = -0.92387953; 0.02 + 0.04 * 0.07612047 = 0.02304482
  CHECK(learning_rate(c, 9) == doctest::Approx(0.0230448187).epsilon(1e-9));
  // A group at half the rate decays from 0.05 to the same absolute 0.02
  // (torch's eta_min is per scheduler, not scaled by the group): j = 4 gives 0.035.
  CHECK(learning_rate(c, 6, 0.5) == doctest::Approx(0.035).epsilon(1e-12));
  CHECK(learning_rate(c, 1, 0.5) == doctest::Approx(0.025).epsilon(1e-12));
  c.warmup_steps = 0;  // no warmup: step 0 at lr, half way (j = 5 of 10) at 0.06
  CHECK(learning_rate(c, 0) == doctest::Approx(0.1).epsilon(1e-12));
  CHECK(learning_rate(c, 5) == doctest::Approx(0.06).epsilon(1e-12));
  check_loop_config(c, 1);
  c.lr_min = 0.2;
  CHECK_THROWS_WITH(check_loop_config(c, 1), doctest::Contains("must not exceed loop.lr"));
  c.lr_min = -1;
  CHECK_THROWS_WITH(check_loop_config(c, 1), doctest::Contains("loop.lr_min must be a finite number >= 0"));
  c.lr_min = 0;
  c.warmup_steps = 10;
  CHECK_THROWS_WITH(check_loop_config(c, 1), doctest::Contains("must be below loop.steps"));
  c.schedule = "cos";
  CHECK_THROWS_WITH(check_loop_config(c, 1), doctest::Contains("constant, poly or cosine"));
  c.warmup_steps = 0;
  c.lr_min = 0.01;  // a floor the schedule would ignore
  for (const char* s : {"constant", "poly"}) {
    c.schedule = s;
    CHECK_THROWS_WITH(check_loop_config(c, 1), doctest::Contains("loop.lr_min 0.01 is the cosine schedule's floor"));
  }
}

TEST_CASE("the loop logs the cosine schedule's rate at every step") {
  test::TempDir tmp;
  const std::string out = tmp / "run";
  LoopConfig c;
  c.steps = 6;
  c.batch = 4;
  c.lr = 0.05;
  c.lr_min = 0.01;
  c.schedule = "cosine";
  c.warmup_steps = 1;
  c.warmup_factor = 0;
  c.seed = 3;
  c.out_dir = out;
  c.quiet = true;
  c.config = {{"stage", "selftest"}, {"loop", {{"schedule", "cosine"}}}};
  auto stage = test::selftest(3);
  run_training(*stage, c);
  std::ifstream log(out + "/log.jsonl");
  std::string line;
  std::vector<double> lrs;
  while (std::getline(log, line)) lrs.push_back(nlohmann::json::parse(line).at("lr").get<double>());
  // Step 0: warmup from 0; steps 1..5: 0.01 + 0.04 (1 + cos(pi (s - 1) / 5)) / 2
  // (cos(pi/5) = 0.80901699, cos(2pi/5) = 0.30901699).
  const std::vector<double> want = {0.0, 0.05, 0.01 + 0.02 * 1.80901699, 0.01 + 0.02 * 1.30901699,
                                    0.01 + 0.02 * 0.69098301, 0.01 + 0.02 * 0.19098301};
  REQUIRE(lrs.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(lrs[i] == doctest::Approx(want[i]).epsilon(1e-8));
}

TEST_CASE("AdamW with per-group weight decay and gradient clipping equals LibTorch's AdamW and clip_grad_norm_") {
  LoopConfig c;
  c.steps = 6;
  c.batch = 4;
  c.lr = 0.05;
  c.weight_decay = 0.1;  // the bias group sets 0
  c.clip_grad_norm = 0.5;  // clips: the first gradients' norm is a few units
  c.seed = 3;
  auto stage = test::selftest(3);
  auto summary = run_training(*stage, c);

  auto ref = test::selftest(3);
  auto groups = ref->param_groups();
  torch::Tensor w = groups[0].params[0].second, b = groups[1].params[0].second;
  std::vector<torch::optim::OptimizerParamGroup> og;
  og.emplace_back(std::vector<torch::Tensor>{w}, std::make_unique<torch::optim::AdamWOptions>(
                                                     torch::optim::AdamWOptions(c.lr).weight_decay(0.1)));
  og.emplace_back(std::vector<torch::Tensor>{b}, std::make_unique<torch::optim::AdamWOptions>(
                                                     torch::optim::AdamWOptions(c.lr).weight_decay(0.0)));
  torch::optim::AdamW opt(og, torch::optim::AdamWOptions(c.lr));
  std::vector<double> ref_losses;
  for (int64_t step = 0; step < c.steps; ++step) {
    opt.zero_grad();
    StepContext ctx;
    ctx.step = step;
    ctx.global_batch = ctx.local_batch = c.batch;
    auto l = ref->compute_loss(ctx);
    l.loss.backward();
    torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{w, b}, c.clip_grad_norm);
    opt.step();
    ref_losses.push_back(l.loss.item<double>());
  }
  auto mine = stage->param_groups();
  const double dw = (mine[0].params[0].second - w).abs().max().item<double>();
  const double db = (mine[1].params[0].second - b).abs().max().item<double>();
  INFO("max |dW| = ", dw, ", |db| = ", db);
  CHECK(dw <= 1e-7);
  CHECK(db <= 1e-7);
  REQUIRE(summary.losses.size() == ref_losses.size());
  for (size_t i = 0; i < ref_losses.size(); ++i) CHECK(summary.losses[i] == doctest::Approx(ref_losses[i]).epsilon(1e-6));
  CHECK(summary.losses.back() < summary.losses.front());  // it learns
}

TEST_CASE("loop.optimizer adam equals LibTorch's Adam (weight decay added to the gradient), not AdamW") {
  LoopConfig c;
  c.optimizer = "adam";
  c.steps = 5;
  c.batch = 4;
  c.lr = 0.05;
  c.weight_decay = 0.1;  // the bias group sets 0
  c.seed = 4;
  auto stage = test::selftest(4);
  auto summary = run_training(*stage, c);

  auto ref = test::selftest(4);
  auto groups = ref->param_groups();
  torch::Tensor w = groups[0].params[0].second, b = groups[1].params[0].second;
  std::vector<torch::optim::OptimizerParamGroup> og;
  og.emplace_back(std::vector<torch::Tensor>{w},
                  std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(c.lr).weight_decay(0.1)));
  og.emplace_back(std::vector<torch::Tensor>{b},
                  std::make_unique<torch::optim::AdamOptions>(torch::optim::AdamOptions(c.lr).weight_decay(0.0)));
  torch::optim::Adam opt(og, torch::optim::AdamOptions(c.lr));
  for (int64_t step = 0; step < c.steps; ++step) {
    opt.zero_grad();
    StepContext ctx;
    ctx.step = step;
    ctx.global_batch = ctx.local_batch = c.batch;
    ref->compute_loss(ctx).loss.backward();
    opt.step();
  }
  auto mine = stage->param_groups();
  const double dw = (mine[0].params[0].second - w).abs().max().item<double>();
  const double db = (mine[1].params[0].second - b).abs().max().item<double>();
  INFO("max |dW| = ", dw, ", |db| = ", db);
  CHECK(dw <= 1e-7);
  CHECK(db <= 1e-7);
  // AdamW from the same start ends elsewhere (the decay is applied otherwise).
  c.optimizer = "adamw";
  auto other = test::selftest(4);
  run_training(*other, c);
  CHECK((other->param_groups()[0].params[0].second - w).abs().max().item<double>() > 1e-4);
  c.optimizer = "sgd";
  CHECK_THROWS_AS(check_loop_config(c, 1), Error);
}

namespace {
LoopConfig resume_config(const std::string& out) {
  LoopConfig c;
  c.steps = 7;
  c.batch = 4;
  c.lr = 0.05;
  c.schedule = "poly";
  c.warmup_steps = 2;
  c.clip_grad_norm = 1.0;
  c.seed = 11;
  c.checkpoint_every = 2;
  c.keep_checkpoints = 10;
  c.out_dir = out;
  c.quiet = true;
  c.config = {{"stage", "selftest"}, {"loop", {{"lr", 0.05}, {"steps", 7}}}, {"selftest", {{"inputs", 16}}}};
  return c;
}
}  // namespace

TEST_CASE("resume after N steps (also after a killed run) gives the uninterrupted run's checkpoint, byte for byte") {
  test::TempDir tmp;
  const std::string a = (tmp / "a"), b = (tmp / "b");
  LoopConfig ca = resume_config(a);
  auto sa = test::selftest(11);
  auto full = run_training(*sa, ca);
  CHECK(full.steps_done == 7);
  CHECK(file_exists(a + "/checkpoints/step_7.safetensors"));
  CHECK(file_exists(a + "/final/selftest.safetensors"));

  LoopConfig cb = resume_config(b);
  cb.stop_after = 3;  // the first run ends after step 3 with a checkpoint
  auto sb = test::selftest(11);
  auto first = run_training(*sb, cb);
  CHECK(first.steps_done == 3);
  CHECK(first.export_dir.empty());
  CHECK(file_exists(b + "/checkpoints/step_3.safetensors"));
  // What a kill -9 leaves: a log line of a step after the checkpoint, a torn
  // line, a temporary file of an interrupted checkpoint write.
  {
    std::ofstream log(b + "/log.jsonl", std::ios::app);
    log << "{\"step\": 3, \"loss\": 1}\n{\"step\": 4, \"lo";
    std::ofstream tmp(b + "/checkpoints/.step_4.safetensors.tmp.123");
    tmp << "partial";
  }
  cb.stop_after = 0;
  cb.resume = true;
  auto sb2 = test::selftest(11);  // a new process: weights from the initialisation again
  auto second = run_training(*sb2, cb);
  CHECK(second.start_step == 3);
  CHECK(second.steps_done == 7);
  for (size_t i = 0; i < second.losses.size(); ++i) CHECK(second.losses[i] == full.losses[3 + i]);
  const auto ka = test::file_bytes(a + "/checkpoints/step_7.safetensors");
  const auto kb = test::file_bytes(b + "/checkpoints/step_7.safetensors");
  CHECK(!ka.empty());
  CHECK(ka == kb);
  CHECK(test::file_bytes(a + "/final/selftest.safetensors") == test::file_bytes(b + "/final/selftest.safetensors"));
  // The log holds every step once.
  std::ifstream log(b + "/log.jsonl");
  std::string line;
  int64_t expect = 0;
  while (std::getline(log, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["step"].get<int64_t>() == expect++);
    for (const char* k : {"loss", "mse", "lr", "grad_norm", "images_per_s", "time", "peak_memory_mb"}) CHECK(j.contains(k));
  }
  CHECK(expect == 7);
  // The checkpoint holds the weights, the AdamW state and the metadata.
  auto ck = read_train_checkpoint(b + "/checkpoints/step_7.safetensors");
  CHECK(ck.step == 7);
  CHECK(ck.seed == 11);
  CHECK(ck.stage == "selftest");
  CHECK(ck.config == ca.config);
  for (const char* k : {"weight", "bias", "adamw.exp_avg.weight", "adamw.exp_avg_sq.bias", "adamw.step.weight", "rng.cpu"})
    CHECK(ck.tensors.count(k) == 1);
  CHECK(ck.tensors["adamw.step.weight"].item<int64_t>() == 7);
}

TEST_CASE("a longer run resumes a shorter one's checkpoint (constant schedule: steps may change)") {
  test::TempDir tmp;
  const std::string a = (tmp / "a"), b = (tmp / "b");
  LoopConfig c = resume_config(a);
  c.schedule = "constant";
  c.warmup_steps = 0;
  auto s1 = test::selftest(11);
  run_training(*s1, c);
  LoopConfig cb = c;
  cb.out_dir = b;
  cb.steps = 4;
  auto s2 = test::selftest(11);
  run_training(*s2, cb);
  cb.steps = 7;
  cb.resume = true;
  auto s3 = test::selftest(11);
  run_training(*s3, cb);
  CHECK(test::file_bytes(a + "/final/selftest.safetensors") == test::file_bytes(b + "/final/selftest.safetensors"));
}

TEST_CASE("resume refuses a checkpoint of another configuration, naming the keys; a used out_dir needs --resume") {
  test::TempDir tmp;
  const std::string a = (tmp / "a");
  LoopConfig c = resume_config(a);
  c.steps = 2;
  auto s = test::selftest(11);
  run_training(*s, c);
  LoopConfig other = c;
  other.steps = 5;
  other.resume = true;
  other.config["loop"]["lr"] = 0.01;
  other.config["selftest"]["inputs"] = 8;
  other.config["loop"]["steps"] = 5;
  try {
    auto s2 = test::selftest(11);
    run_training(*s2, other);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    const std::string m = e.what();
    CHECK(m.find(": loop.lr, selftest.inputs differ") != std::string::npos);  // steps may change
    CHECK(m.find("step_2.safetensors") != std::string::npos);
  }
  LoopConfig again = c;
  try {
    auto s3 = test::selftest(11);
    run_training(*s3, again);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::usage);
    CHECK(std::string(e.what()).find("--resume") != std::string::npos);
  }
  LoopConfig odd = c;
  odd.batch = 3;
  auto s4 = test::selftest(11);
  CHECK_THROWS_AS(run_training(*s4, odd, nullptr), Error);
}

TEST_CASE("config_differences: one input spelled two ways is the same; other paths and values differ") {
  test::TempDir tmp;
  const std::string d = tmp / "data";
  std::filesystem::create_directories(d + "/hq");
  std::filesystem::create_directories(d + "/lq");
  std::filesystem::create_directory_symlink(d + "/hq", d + "/link");
  const auto cfg = [](const std::string& images, double lr) {
    return nlohmann::ordered_json{{"loop", {{"lr", lr}}}, {"st", {{"images", images}}}};
  };
  const std::set<std::string> none;
  for (const std::string& same : {d + "/hq/", d + "/./hq", d + "/lq/../hq", d + "/link"}) {
    INFO(same);
    CHECK(config_differences(cfg(d + "/hq", 1), cfg(same, 1), none).empty());
  }
  CHECK(config_differences(cfg(d + "/hq", 1), cfg(d + "/lq", 1), none) == std::vector<std::string>{"st.images"});
  // A path that no longer exists is compared as text.
  CHECK(config_differences(cfg(d + "/gone", 1), cfg(d + "/gone/", 1), none) == std::vector<std::string>{"st.images"});
  CHECK(config_differences(cfg(d + "/hq", 1), cfg(d + "/hq/", 2), none) == std::vector<std::string>{"loop.lr"});
}

namespace {
// The selftest stage whose loss turns NaN from step `bad` on.
class NanStage : public Stage {
 public:
  NanStage(std::unique_ptr<Stage> s, int64_t bad) : s_(std::move(s)), bad_(bad) {}
  std::string name() const override { return "nan"; }
  std::vector<ParamGroup> param_groups() override { return s_->param_groups(); }
  StepLoss compute_loss(const StepContext& ctx) override {
    auto l = s_->compute_loss(ctx);
    if (ctx.step >= bad_) l.loss = l.loss * std::nan("");
    return l;
  }
  void export_model(const std::string& dir) override { s_->export_model(dir); }

 private:
  std::unique_ptr<Stage> s_;
  int64_t bad_;
};
}  // namespace

TEST_CASE("a non-finite loss stops the run with a message naming the step and the last checkpoint, which stays") {
  test::TempDir tmp;
  const std::string a = (tmp / "a");
  LoopConfig c = resume_config(a);
  NanStage s(test::selftest(11), 3);
  try {
    run_training(s, c);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    const std::string m = e.what();
    CHECK(m.find("non-finite loss at step 3") != std::string::npos);
    CHECK(m.find("step_2.safetensors") != std::string::npos);
  }
  CHECK(file_exists(a + "/checkpoints/step_2.safetensors"));
  CHECK(!file_exists(a + "/checkpoints/step_4.safetensors"));
  CHECK(!file_exists(a + "/final/selftest.safetensors"));
}

TEST_CASE("keep_checkpoints keeps the newest; list_checkpoints ignores other names") {
  test::TempDir tmp;
  const std::string a = (tmp / "a");
  LoopConfig c = resume_config(a);
  c.checkpoint_every = 1;
  c.keep_checkpoints = 2;
  auto s = test::selftest(11);
  run_training(*s, c);
  auto l = list_checkpoints(a + "/checkpoints");
  REQUIRE(l.size() == 2);
  CHECK(l[0].first == 6);
  CHECK(l[1].first == 7);
}

TEST_CASE("--resume passes over a damaged newest checkpoint for the one before it, and ends as the whole run does") {
  test::TempDir tmp;
  const std::string a = (tmp / "a"), b = (tmp / "b");
  LoopConfig ca = resume_config(a);
  auto sa = test::selftest(11);
  run_training(*sa, ca);
  LoopConfig cb = resume_config(b);
  cb.stop_after = 5;  // checkpoints at steps 2, 4 and 5
  auto sb = test::selftest(11);
  run_training(*sb, cb);
  // The newest cut short (a disk error): step 4's is used.
  const std::string newest = b + "/checkpoints/step_5.safetensors";
  const auto bytes = test::file_bytes(newest);
  REQUIRE(bytes.size() > 100);
  write_file_atomic(newest, std::string(bytes.begin(), bytes.begin() + bytes.size() / 2));
  cb.stop_after = 0;
  cb.resume = true;
  auto sb2 = test::selftest(11);
  const TrainSummary second = run_training(*sb2, cb);
  CHECK(second.start_step == 4);
  CHECK(test::file_bytes(a + "/checkpoints/step_7.safetensors") == test::file_bytes(b + "/checkpoints/step_7.safetensors"));
  // Every checkpoint damaged: the error names the oldest, the last tried.
  const std::string c = tmp / "c";
  LoopConfig cc = resume_config(c);
  cc.stop_after = 2;
  auto sc = test::selftest(11);
  run_training(*sc, cc);
  write_file_atomic(c + "/checkpoints/step_2.safetensors", "damaged");
  cc.stop_after = 0;
  cc.resume = true;
  auto sc2 = test::selftest(11);
  CHECK_THROWS_WITH_AS(run_training(*sc2, cc), doctest::Contains("step_2.safetensors"), Error);
}

TEST_CASE("loop.ema_rate: the moving average of every step's weights, checkpointed, resumed and exported") {
  test::TempDir tmp;
  auto config = [&](const std::string& out) {
    LoopConfig c = resume_config(out);
    c.steps = 4;
    c.checkpoint_every = 1;
    c.ema_rate = 0.75;
    c.config["loop"]["ema_rate"] = 0.75;
    return c;
  };
  const std::string a = tmp / "a";
  auto sa = test::selftest(11);
  std::vector<torch::Tensor> w;  // the weights before step 0 and after each step
  for (const auto& g : sa->param_groups())
    if (g.name == "weight") w.push_back(g.params[0].second.detach().clone());
  run_training(*sa, config(a));
  for (int k = 1; k <= 4; ++k)
    w.push_back(read_train_checkpoint(checkpoint_path(a + "/checkpoints", k)).tensors.at("weight"));
  // ema_0 = w_0; ema_k = 0.75 ema_{k-1} + 0.25 w_k, by hand.
  torch::Tensor ema = w[0].to(torch::kDouble);
  for (int k = 1; k <= 4; ++k) {
    ema = 0.75 * ema + 0.25 * w[size_t(k)].to(torch::kDouble);
    const auto ck = read_train_checkpoint(checkpoint_path(a + "/checkpoints", k));
    CHECK(torch::allclose(ck.tensors.at("ema.weight").to(torch::kDouble), ema, 1e-6, 1e-7));
  }
  // The export holds the average; the stage's weights are the last ones again.
  const auto f = SafeTensorsFile::open(a + "/final/selftest.safetensors");
  const torch::Tensor exported = model::to_tensor(*f->find("weight"), "export");
  CHECK(torch::allclose(exported.to(torch::kDouble), ema, 1e-6, 1e-7));
  CHECK(!torch::allclose(exported, w[4]));
  for (const auto& g : sa->param_groups())
    if (g.name == "weight") CHECK(torch::equal(g.params[0].second.detach(), w[4]));
  // A run stopped after step 2 and resumed ends with the same average.
  const std::string b = tmp / "b";
  LoopConfig cb = config(b);
  cb.stop_after = 2;
  auto sb = test::selftest(11);
  run_training(*sb, cb);
  cb.stop_after = 0;
  cb.resume = true;
  auto sb2 = test::selftest(11);
  run_training(*sb2, cb);
  CHECK(test::file_bytes(a + "/final/selftest.safetensors") == test::file_bytes(b + "/final/selftest.safetensors"));
  // Out of range.
  LoopConfig bad = config(tmp / "c");
  bad.ema_rate = 1.0;
  CHECK_THROWS_WITH_AS(check_loop_config(bad, 1), doctest::Contains("loop.ema_rate"), Error);
}

TEST_CASE("resume: a key the checkpoint's configuration lacks (a newer setting) compares as its default") {
  test::TempDir tmp;
  LoopConfig c = resume_config(tmp / "a");
  c.steps = 2;
  c.config_defaults = default_config(selftest_stage_info());
  auto s = test::selftest(11);
  run_training(*s, c);  // its configuration has no selftest.noise or selftest.items
  LoopConfig later = c;
  later.steps = 3;
  later.resume = true;
  later.config["loop"]["steps"] = 3;
  later.config["selftest"]["noise"] = c.config_defaults["selftest"]["noise"];  // at its default: the same run
  auto s2 = test::selftest(11);
  CHECK(run_training(*s2, later).start_step == 2);
  LoopConfig changed = later;
  changed.steps = 4;
  changed.config["loop"]["steps"] = 4;
  changed.config["selftest"]["items"] = 7;  // not the default: another run
  auto s3 = test::selftest(11);
  CHECK_THROWS_WITH_AS(run_training(*s3, changed), doctest::Contains("selftest.items differ"), Error);
}

TEST_CASE("resume of a finished run: nothing runs, every step counts as done") {
  test::TempDir tmp;
  LoopConfig c = resume_config(tmp / "a");
  auto s = test::selftest(11);
  run_training(*s, c);
  c.resume = true;
  auto s2 = test::selftest(11);
  const TrainSummary again = run_training(*s2, c);
  CHECK(again.start_step == c.steps);
  CHECK(again.steps_done == c.steps);
  CHECK(again.losses.empty());
}

namespace {
// The selftest stage whose export fails (a full disk, say).
class FailingExport : public Stage {
 public:
  explicit FailingExport(std::unique_ptr<Stage> s) : s_(std::move(s)) {}
  std::string name() const override { return s_->name(); }
  std::vector<ParamGroup> param_groups() override { return s_->param_groups(); }
  StepLoss compute_loss(const StepContext& ctx) override { return s_->compute_loss(ctx); }
  void export_model(const std::string&) override { throw_runtime("no space left on device"); }

 private:
  std::unique_ptr<Stage> s_;
};
}  // namespace

TEST_CASE("loop.ema_rate: a failed export puts the last weights back; a checkpoint whose average holds NaN is refused") {
  test::TempDir tmp;
  LoopConfig c = resume_config(tmp / "a");
  c.steps = 2;
  c.ema_rate = 0.5;
  c.config["loop"]["ema_rate"] = 0.5;
  FailingExport stage(test::selftest(11));
  CHECK_THROWS_WITH_AS(run_training(stage, c), doctest::Contains("no space left"), Error);
  const auto ck = read_train_checkpoint(checkpoint_path(tmp / "a/checkpoints", 2));
  for (const auto& g : stage.param_groups())
    for (const auto& [name, p] : g.params) CHECK(torch::equal(p.detach(), ck.tensors.at(name)));
  // The same checkpoint with NaN in its average: --resume stops before a step.
  TrainCheckpoint bad = ck;
  bad.tensors["ema.weight"] = ck.tensors.at("ema.weight").clone();
  bad.tensors["ema.weight"].view(-1)[0] = std::nanf("");
  write_train_checkpoint(checkpoint_path(tmp / "a/checkpoints", 2), bad);
  LoopConfig again = c;
  again.steps = 3;
  again.config["loop"]["steps"] = 3;
  again.resume = true;
  auto s2 = test::selftest(11);
  CHECK_THROWS_WITH_AS(run_training(*s2, again), doctest::Contains("ema.weight"), Error);
}

TEST_CASE("resume refuses a checkpoint whose optimizer state holds NaN, naming the tensor") {
  test::TempDir tmp;
  LoopConfig c = resume_config(tmp / "a");
  c.steps = 2;
  auto s = test::selftest(11);
  run_training(*s, c);
  const std::string path = checkpoint_path(tmp / "a/checkpoints", 2);
  TrainCheckpoint bad = read_train_checkpoint(path);
  bad.tensors["adamw.exp_avg_sq.bias"] = bad.tensors.at("adamw.exp_avg_sq.bias").clone();
  bad.tensors["adamw.exp_avg_sq.bias"].view(-1)[0] = std::nanf("");
  write_train_checkpoint(path, bad);
  LoopConfig again = c;
  again.steps = 3;
  again.config["loop"]["steps"] = 3;
  again.resume = true;
  auto s2 = test::selftest(11);
  CHECK_THROWS_WITH_AS(run_training(*s2, again), doctest::Contains("adamw.exp_avg_sq.bias"), Error);
}

TEST_CASE("loop.micro_batch: the step's samples in micro-batches give the whole batch's step (gradient accumulation)") {
  LoopConfig c;
  c.steps = 6;
  c.batch = 8;
  c.lr = 0.05;
  c.clip_grad_norm = 0.5;
  c.seed = 3;
  c.quiet = true;
  c.checkpoint_every = 0;
  test::TempDir tmp;
  c.out_dir = tmp / "whole";
  auto whole = test::selftest(3);
  const auto a = run_training(*whole, c);
  // The gradient's norm, which Adam's step alone would not show (it is
  // nearly invariant to the gradient's scale).
  auto grad_norms = [](const std::string& dir) {
    std::vector<double> v;
    std::ifstream f(dir + "/log.jsonl");
    for (std::string line; std::getline(f, line);) v.push_back(nlohmann::json::parse(line)["grad_norm"].get<double>());
    return v;
  };
  const auto norms = grad_norms(c.out_dir);
  REQUIRE(norms.size() == 6);
  for (int64_t micro : {1, 2, 4}) {
    CAPTURE(micro);
    c.micro_batch = micro;
    c.out_dir = tmp / ("micro" + std::to_string(micro));
    auto parts = test::selftest(3);
    const auto b = run_training(*parts, c);
    const auto nb = grad_norms(c.out_dir);
    REQUIRE(nb.size() == norms.size());
    for (size_t i = 0; i < nb.size(); ++i) CHECK(nb[i] == doctest::Approx(norms[i]).epsilon(1e-5));
    REQUIRE(b.losses.size() == a.losses.size());
    // The mean of the micro-batches' mean losses is the batch's mean loss.
    for (size_t i = 0; i < a.losses.size(); ++i) CHECK(b.losses[i] == doctest::Approx(a.losses[i]).epsilon(1e-6));
    auto pa = whole->param_groups(), pb = parts->param_groups();
    for (size_t g = 0; g < pa.size(); ++g)
      CHECK((pa[g].params[0].second - pb[g].params[0].second).abs().max().item<double>() <= 1e-6);
  }
  // The stage saw micro-batches of 2 at the offsets of their samples.
  struct Calls : Stage {
    std::unique_ptr<Stage> s = test::selftest(3);
    std::vector<std::pair<int64_t, int64_t>> seen;
    std::string name() const override { return "calls"; }
    std::vector<ParamGroup> param_groups() override { return s->param_groups(); }
    StepLoss compute_loss(const StepContext& ctx) override {
      seen.emplace_back(ctx.local_batch, ctx.sample_offset);
      return s->compute_loss(ctx);
    }
    void export_model(const std::string&) override {}
  } calls;
  c.steps = 1;
  c.micro_batch = 2;
  c.out_dir.clear();
  run_training(calls, c);
  CHECK(calls.seen == std::vector<std::pair<int64_t, int64_t>>{{2, 0}, {2, 2}, {2, 4}, {2, 6}});
}

TEST_CASE("loop.micro_batch: it must divide each process's samples; --resume may change it") {
  LoopConfig c;
  c.batch = 8;
  c.micro_batch = 3;
  CHECK_THROWS_WITH_AS(check_loop_config(c, 1), doctest::Contains("loop.micro_batch 3 must divide the 8 samples"), Error);
  c.micro_batch = 4;
  CHECK_THROWS_WITH_AS(check_loop_config(c, 4), doctest::Contains("must divide the 2 samples"), Error);
  check_loop_config(c, 2);
  c.micro_batch = -1;
  CHECK_THROWS_WITH_AS(check_loop_config(c, 1), doctest::Contains("must not be negative"), Error);
  CHECK(resume_free_keys().count("loop.micro_batch") == 1);

  // A run that resumes with smaller micro-batches (after running out of
  // memory) goes on to the same weights, to float rounding.
  test::TempDir tmp;
  LoopConfig r = resume_config(tmp / "a");
  r.batch = 4;
  auto s1 = test::selftest(11);
  const auto whole = run_training(*s1, r);
  LoopConfig rb = resume_config(tmp / "b");
  rb.batch = 4;
  rb.stop_after = 3;
  auto s2 = test::selftest(11);
  run_training(*s2, rb);
  rb.stop_after = 0;
  rb.resume = true;
  rb.micro_batch = 1;
  rb.config["loop"]["micro_batch"] = 1;
  auto s3 = test::selftest(11);
  const auto rest = run_training(*s3, rb);
  CHECK(rest.start_step == 3);
  for (size_t i = 0; i < rest.losses.size(); ++i) CHECK(rest.losses[i] == doctest::Approx(whole.losses[3 + i]).epsilon(1e-6));
}
