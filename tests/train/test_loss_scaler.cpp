// fp16 loss scaling (loop.amp with loop.amp_dtype fp16;
// lib/rass/train/loss_scaler.cpp and its use in the loop): the update rule by
// hand, the loop step by step against PyTorch's torch.amp.GradScaler
// (tests/train/make_loss_scaler_fixture.py), exactness without non-finite
// steps, --resume, the stop of a diverged run, refused settings.
#include "nn/torch_doctest.hpp"  // first: drops c10's glog-style CHECK

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/model/checkpoint.hpp"
#include "rass/train/loop.hpp"
#include "rass/train/loss_scaler.hpp"
#include "rass/train/train_checkpoint.hpp"
#include "test_support.hpp"
#include "train/train_test_util.hpp"

using namespace rass;
using namespace rass::train;

namespace {

const std::string kScalerRef = std::string(RASS_FIXTURES) + "/train/loss_scaler_ref.safetensors";

struct ScalerRef {
  std::shared_ptr<SafeTensorsFile> f = SafeTensorsFile::open(kScalerRef);
  torch::Tensor operator()(const std::string& n) const {
    const auto* v = f->find(n);
    REQUIRE_MESSAGE(v, n);
    return model::to_tensor(*v, kScalerRef);
  }
  nlohmann::json settings() const { return nlohmann::json::parse(f->metadata().at("settings")); }
};

bool listed(const nlohmann::json& steps, int64_t step) {
  for (const auto& s : steps)
    if (s.get<int64_t>() == step) return true;
  return false;
}

// The fixture's model and batches: y = W x + b, MSE; the steps the fixture
// lists get an infinite gradient (through a hook on an alias of W or b, so
// the loss stays finite) or a NaN loss. Records the weights each step starts
// from (the weights after the step before).
class FixtureStage : public Stage {
 public:
  explicit FixtureStage(const ScalerRef& ref, torch::Device dev = torch::kCPU)
      : s_(ref.settings()), x_(ref("x").to(dev)), y_(ref("y").to(dev)) {
    w_ = ref("w0").clone().to(dev).requires_grad_(true);
    b_ = ref("b0").clone().to(dev).requires_grad_(true);
  }
  std::string name() const override { return "scaler-fixture"; }
  std::vector<ParamGroup> param_groups() override { return {ParamGroup{"all", {{"w", w_}, {"b", b_}}, 1.0, -1}}; }
  StepLoss compute_loss(const StepContext& ctx) override {
    seen_w.push_back(w_.detach().clone());
    seen_b.push_back(b_.detach().clone());
    torch::Tensor w = w_.view_as(w_), b = b_.view_as(b_);
    auto inf_grad = [](const torch::Tensor& g) { return g * std::numeric_limits<float>::infinity(); };
    if (listed(s_["inf_grad_w"], ctx.step)) w.register_hook(inf_grad);
    if (listed(s_["inf_grad_b"], ctx.step)) b.register_hook(inf_grad);
    StepLoss l;
    const torch::Tensor xw = torch::matmul(x_[ctx.step], w.t());
    matmul_types.push_back(xw.scalar_type());  // Half under the loop's fp16 autocast
    l.loss = torch::mse_loss(xw + b, y_[ctx.step]);
    if (listed(s_["nan_loss"], ctx.step)) l.loss = l.loss * std::nan("");
    l.images = ctx.local_batch;
    return l;
  }
  void export_model(const std::string&) override {}
  std::vector<torch::Tensor> seen_w, seen_b;
  std::vector<torch::ScalarType> matmul_types;
  torch::Tensor w_, b_;

 private:
  nlohmann::json s_;
  torch::Tensor x_, y_;
};

LoopConfig fp16_config(const ScalerRef& ref, const std::string& out) {
  const auto s = ref.settings();
  LoopConfig c;
  c.steps = s["steps"].get<int64_t>();
  c.batch = s["batch"].get<int64_t>();
  c.lr = s["lr"].get<double>();
  c.weight_decay = s["weight_decay"].get<double>();
  c.clip_grad_norm = s["clip_grad_norm"].get<double>();
  c.amp = true;
  c.amp_dtype = "fp16";
  c.loss_scale = s["init_scale"].get<double>();
  c.loss_scale_growth_interval = s["growth_interval"].get<int64_t>();
  c.out_dir = out;
  c.checkpoint_every = 0;
  c.quiet = true;
  c.config = {{"stage", "scaler-fixture"}, {"loop", {{"amp_dtype", "fp16"}}}};
  return c;
}

std::vector<nlohmann::json> log_lines(const std::string& path) {
  std::vector<nlohmann::json> v;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) v.push_back(nlohmann::json::parse(line));
  return v;
}

}  // namespace

TEST_CASE("LossScaler: GradScaler's update rule, by hand") {
  LossScaler s(true, 4.0, 2);
  CHECK(s.scale() == 4.0f);
  s.update(false);  // 1 finite step
  CHECK(s.scale() == 4.0f);
  CHECK(s.growth_tracker() == 1);
  s.update(false);  // the 2nd in a row: doubled, count restarts
  CHECK(s.scale() == 8.0f);
  CHECK(s.growth_tracker() == 0);
  s.update(false);
  s.update(true);  // a skipped step: halved, count restarts
  CHECK(s.scale() == 4.0f);
  CHECK(s.growth_tracker() == 0);
  // Doubling past float32's range keeps the scale.
  s.set_state(std::ldexp(1.0f, 127), 1);
  s.update(false);
  CHECK(s.scale() == std::ldexp(1.0f, 127));
  CHECK(s.growth_tracker() == 0);
  // scale_loss and unscale: times 4 and 1/4.
  s.set_state(4.0f, 0);
  auto loss = torch::tensor(1.5f);
  CHECK(s.scale_loss(loss).item<float>() == 6.0f);
  auto g = torch::tensor({8.0f, -2.0f});
  s.unscale({g});
  CHECK(g[0].item<float>() == 2.0f);
  CHECK(g[1].item<float>() == -0.5f);
  // Disabled: nothing changes.
  LossScaler off(false);
  CHECK(off.scale_loss(loss).item<float>() == 1.5f);
  off.unscale({g});
  CHECK(g[0].item<float>() == 2.0f);
}

TEST_CASE("fp16 loss scaling in the loop equals torch.amp.GradScaler step by step: skips, backoff, growth, clipping after unscale") {
  test::TempDir tmp;
  ScalerRef ref;
  FixtureStage st(ref);
  const LoopConfig c = fp16_config(ref, tmp / "run");
  const TrainSummary sum = run_training(st, c);
  const int64_t steps = c.steps;
  REQUIRE(sum.steps_done == steps);
  const auto skipped = ref("skipped"), used = ref("scale_used"), loss = ref("loss").to(torch::kDouble);
  const auto w = ref("w"), b = ref("b");
  CHECK(sum.skipped_steps == skipped.sum().item<int64_t>());
  CHECK(sum.skipped_steps == 4);
  for (auto t : st.matmul_types) CHECK(bool(t == torch::kFloat));  // the CPU: no autocast
  const auto lines = log_lines(tmp / "run/log.jsonl");
  REQUIRE(int64_t(lines.size()) == steps);
  for (int64_t k = 0; k < steps; ++k) {
    CAPTURE(k);
    CHECK(lines[k]["loss_scale"].get<double>() == used[k].item<double>());
    CHECK(lines[k]["skipped"].get<bool>() == (skipped[k].item<int64_t>() == 1));
    const double want = loss[k].item<double>();
    if (std::isnan(want)) {
      CHECK(std::isnan(sum.losses[k]));
      CHECK(lines[k]["loss"].is_null());  // JSON has no NaN
    } else {
      CHECK(sum.losses[k] == doctest::Approx(want).epsilon(1e-6));
    }
    // The norm clipped is the unscaled gradients' (unscale_ before clipping).
    if (skipped[k].item<int64_t>() == 0)
      CHECK(lines[k]["grad_norm"].get<double>() == doctest::Approx(ref("grad_norm")[k].item<double>()).epsilon(1e-5));
    // The weights after step k: what step k + 1 started from, or the last.
    const torch::Tensor mw = k + 1 < steps ? st.seen_w[k + 1] : st.w_.detach();
    const torch::Tensor mb = k + 1 < steps ? st.seen_b[k + 1] : st.b_.detach();
    CHECK((mw - w[k]).abs().max().item<double>() <= 1e-6);
    CHECK((mb - b[k]).abs().max().item<double>() <= 1e-6);
  }
  // A skipped step leaves the weights as they were.
  for (int64_t k = 1; k + 1 < steps; ++k)
    if (skipped[k].item<int64_t>() == 1) CHECK(torch::equal(st.seen_w[k], st.seen_w[k + 1]));
}

TEST_CASE("fp16 loss scaling without non-finite steps changes nothing: powers of two are exact in float32") {
  LoopConfig c;
  c.steps = 6;
  c.batch = 4;
  c.lr = 0.05;
  c.clip_grad_norm = 0.5;
  c.seed = 3;
  c.quiet = true;
  auto plain = test::selftest(3);
  const auto a = run_training(*plain, c);
  c.amp = true;  // on the CPU: no autocast, the scaling alone
  c.amp_dtype = "fp16";
  c.loss_scale_growth_interval = 2;  // the scale grows twice on the way
  auto scaled = test::selftest(3);
  const auto b = run_training(*scaled, c);
  CHECK(b.skipped_steps == 0);
  CHECK(a.losses == b.losses);
  auto pa = plain->param_groups(), pb = scaled->param_groups();
  for (size_t g = 0; g < pa.size(); ++g) CHECK(torch::equal(pa[g].params[0].second, pb[g].params[0].second));
}

TEST_CASE("fp16 loss scaling: --resume continues with the checkpoint's scale, as the uninterrupted run") {
  test::TempDir tmp;
  ScalerRef ref;
  FixtureStage whole(ref);
  LoopConfig c = fp16_config(ref, tmp / "a");
  run_training(whole, c);

  LoopConfig cb = fp16_config(ref, tmp / "b");
  cb.stop_after = 7;  // after two skips: the scale is 64, the count 1
  FixtureStage first(ref);
  run_training(first, cb);
  auto ck = read_train_checkpoint(tmp / "b/checkpoints/step_7.safetensors");
  REQUIRE(ck.tensors.count("amp.loss_scale") == 1);
  CHECK(ck.tensors["amp.loss_scale"].item<float>() == ref("scale_after")[6].item<float>());
  CHECK(ck.tensors["amp.growth_tracker"].item<int64_t>() == ref("growth_tracker")[6].item<int64_t>());
  cb.stop_after = 0;
  cb.resume = true;
  FixtureStage second(ref);
  const auto rest = run_training(second, cb);
  CHECK(rest.start_step == 7);
  CHECK(test::file_bytes(tmp / "a/checkpoints/step_12.safetensors") ==
        test::file_bytes(tmp / "b/checkpoints/step_12.safetensors"));
  const auto lines = log_lines(tmp / "b/log.jsonl");
  REQUIRE(lines.size() == 12);
  CHECK(lines[8]["loss_scale"].get<double>() == ref("scale_used")[8].item<double>());

  // A checkpoint without the scale (damaged, or edited) is refused, naming it.
  auto bad = read_train_checkpoint(tmp / "b/checkpoints/step_7.safetensors");
  bad.tensors.erase("amp.loss_scale");
  write_train_checkpoint(tmp / "bad.safetensors", bad);
  LoopConfig cc = fp16_config(ref, tmp / "c");
  cc.resume_from = tmp / "bad.safetensors";
  FixtureStage third(ref);
  try {
    run_training(third, cc);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::bad_input);
    CHECK(std::string(e.what()).find("amp.loss_scale") != std::string::npos);
  }
  // A count the loop never writes (at or past the growth interval: the scale
  // would never grow) or a scale below its floor: refused too.
  for (const auto& [key, value] : {std::pair<std::string, torch::Tensor>{"amp.growth_tracker", torch::tensor(int64_t(3))},
                                   {"amp.loss_scale", torch::tensor(1e-30f)}}) {
    CAPTURE(key);
    auto edited = read_train_checkpoint(tmp / "b/checkpoints/step_7.safetensors");
    edited.tensors[key] = value;
    write_train_checkpoint(tmp / "edited.safetensors", edited);
    LoopConfig ce = fp16_config(ref, tmp / "e");
    ce.resume_from = tmp / "edited.safetensors";
    FixtureStage fourth(ref);
    CHECK_THROWS_WITH_AS(run_training(fourth, ce), doctest::Contains("not what this configuration writes"), Error);
  }
}

namespace {
// One trainable tensor w (ones) and a loss of it.
class OneTensorStage : public Stage {
 public:
  OneTensorStage(int64_t n, std::function<torch::Tensor(const torch::Tensor&)> loss)
      : w_(torch::ones({n}).requires_grad_(true)), loss_(std::move(loss)) {}
  std::string name() const override { return "one-tensor"; }
  std::vector<ParamGroup> param_groups() override { return {ParamGroup{"w", {{"w", w_}}, 1.0, -1}}; }
  StepLoss compute_loss(const StepContext&) override {
    StepLoss l;
    l.loss = loss_(w_);
    l.images = 1;
    return l;
  }
  void export_model(const std::string&) override {}
  torch::Tensor w_;

 private:
  std::function<torch::Tensor(const torch::Tensor&)> loss_;
};

// A loss whose gradient passes through fp16 (as under fp16 autocast): its
// gradient, 1e-8 per element, is below fp16's least subnormal (6e-8).
OneTensorStage half_stage() {
  return OneTensorStage(4, [](const torch::Tensor& w) { return (w.to(torch::kHalf).to(torch::kFloat) * 1e-8).sum(); });
}

// Every step's gradient is infinite: no scale helps.
OneTensorStage always_inf_stage() {
  return OneTensorStage(3, [](const torch::Tensor& w_leaf) {
    torch::Tensor w = w_leaf.view_as(w_leaf);
    w.register_hook([](const torch::Tensor& g) { return g * std::numeric_limits<float>::infinity(); });
    return (w * w).sum();
  });
}
}  // namespace

TEST_CASE("fp16 loss scaling keeps a gradient that fp16 flushes to zero") {
  test::TempDir tmp;
  auto grad_norm = [&](bool scaled) {
    LoopConfig c;
    c.steps = 1;
    c.batch = 1;
    c.quiet = true;
    c.amp = scaled;
    c.amp_dtype = scaled ? "fp16" : "bf16";
    c.out_dir = tmp / (scaled ? "scaled" : "plain");
    OneTensorStage st = half_stage();
    run_training(st, c);
    return log_lines(c.out_dir + "/log.jsonl").at(0)["grad_norm"].get<double>();
  };
  CHECK(grad_norm(false) == 0.0);  // 1e-8 in fp16 is 0
  // 1e-8 x 65536 = 6.6e-4 survives fp16 (11 significant bits), then / 65536:
  // the norm of four 1e-8.
  CHECK(grad_norm(true) == doctest::Approx(2e-8).epsilon(1e-3));
}

TEST_CASE("fp16 loss scaling: a run whose gradients stay non-finite stops once the scale is below 2^-24") {
  LoopConfig c;
  c.steps = 100;
  c.batch = 1;
  c.amp = true;
  c.amp_dtype = "fp16";
  c.loss_scale = 1;
  c.quiet = true;
  OneTensorStage st = always_inf_stage();
  try {
    run_training(st, c);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.code() == ExitCode::runtime);
    const std::string m = e.what();
    INFO(m);
    // Scale 1 halves at every step: below 2^-24 after the 25th (step 24).
    CHECK(m.find("non-finite gradient") != std::string::npos);
    CHECK(m.find("at step 24") != std::string::npos);
    CHECK(m.find("2^-24") != std::string::npos);
  }
  CHECK(torch::equal(st.w_, torch::ones({3})));  // no step was taken
}

TEST_CASE("loop.amp_dtype and the loss-scale settings: bad values and settings nothing uses are refused") {
  auto refused = [](LoopConfig c, const std::string& part) {
    try {
      check_loop_config(c, 1);
      FAIL("accepted");
    } catch (const Error& e) {
      CHECK(e.code() == ExitCode::usage);
      INFO(e.what());
      CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
  };
  LoopConfig c;
  c.amp = true;
  c.amp_dtype = "fp32";
  refused(c, "loop.amp_dtype must be bf16 or fp16");
  c.amp = false;
  c.amp_dtype = "fp16";
  refused(c, "set loop.amp=true");
  c.amp = true;
  c.loss_scale = 0;
  refused(c, "loop.loss_scale must be");
  c.loss_scale = 1e39;  // beyond float32
  refused(c, "loop.loss_scale must be");
  c.loss_scale = 1e-30;  // below the floor the run stops at (and 0 in float32 for 1e-50)
  refused(c, "from 2^-24");
  c.loss_scale = 1024;
  c.loss_scale_growth_interval = 0;
  refused(c, "loop.loss_scale_growth_interval must be");
  c.loss_scale_growth_interval = 100;
  check_loop_config(c, 1);  // fp16 with its settings: fine
  c.amp_dtype = "bf16";
  refused(c, "fp16's loss scaling");
}

// unit.train.cuda_amp_fp16 (tests/CMakeLists.txt): skips with 77 without a GPU.
TEST_CASE("fp16 autocast training on CUDA: GradScaler's skips and scales and float32's weights within fp16 rounding") {
  if (!torch::cuda::is_available()) test::skip("no CUDA device");
  test::TempDir tmp;
  ScalerRef ref;
  FixtureStage st(ref, torch::Device(torch::kCUDA, 0));
  const LoopConfig c = fp16_config(ref, tmp / "run");
  const TrainSummary sum = run_training(st, c);
  REQUIRE(sum.steps_done == c.steps);
  // The loop's autocast ran in fp16: the stage's product came out in Half.
  REQUIRE(!st.matmul_types.empty());
  for (auto t : st.matmul_types) CHECK(bool(t == torch::kHalf));
  // The same steps skipped and the same scales as GradScaler's (the injected
  // non-finite values do not depend on the precision) ...
  const auto skipped = ref("skipped"), used = ref("scale_used");
  CHECK(sum.skipped_steps == skipped.sum().item<int64_t>());
  const auto lines = log_lines(tmp / "run/log.jsonl");
  REQUIRE(int64_t(lines.size()) == c.steps);
  for (int64_t k = 0; k < c.steps; ++k) {
    CAPTURE(k);
    CHECK(lines[k]["loss_scale"].get<double>() == used[k].item<double>());
    CHECK(lines[k]["skipped"].get<bool>() == (skipped[k].item<int64_t>() == 1));
  }
  // ... and the float32 run's weights within fp16's rounding of the product:
  // PyTorch's CPU fp16 autocast of the same steps (make_loss_scaler_fixture.py's
  // settings) stays within 4e-5 of them; 1e-3 leaves room for CUDA's kernels.
  const int64_t last = c.steps - 1;
  const double dw = (st.w_.detach().cpu() - ref("w")[last]).abs().max().item<double>();
  const double db = (st.b_.detach().cpu() - ref("b")[last]).abs().max().item<double>();
  INFO("max |dW| = ", dw, ", |db| = ", db);
  CHECK(dw <= 1e-3);
  CHECK(db <= 1e-3);
}
