#include "rass/train/selftest_stage.hpp"

#include <torch/torch.h>

#include "rass/core/error.hpp"
#include "rass/core/file.hpp"
#include "rass/model/model_folder.hpp"
#include "rass/core/rng.hpp"
#include "rass/io/safetensors.hpp"
#include "rass/train/data_order.hpp"

namespace rass::train {

namespace {

torch::Tensor normal_tensor(Rng& rng, std::vector<int64_t> shape) {
  auto t = torch::empty(shape, torch::kFloat);
  float* p = t.data_ptr<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = float(rng.normal());
  return t;
}

class SelftestStage : public Stage {
 public:
  SelftestStage(const nlohmann::ordered_json& s, const StageEnv& env)
      : env_(env),
        inputs_(s.at("inputs").get<int64_t>()),
        outputs_(s.at("outputs").get<int64_t>()),
        noise_(s.at("noise").get<double>()),
        bad_item_(s.at("bad_item").get<int64_t>()),
        order_(size_t(s.at("items").get<int64_t>()), env.seed) {
    const int64_t items = s.at("items").get<int64_t>();
    Rng truth(env.seed, "selftest", "truth");
    a_ = normal_tensor(truth, {outputs_, inputs_});
    bstar_ = normal_tensor(truth, {outputs_});
    x_ = torch::empty({items, inputs_});
    for (int64_t i = 0; i < items; ++i) {
      Rng r(env.seed, "item " + std::to_string(i), "x");
      x_[i].copy_(normal_tensor(r, {inputs_}));
    }
    Rng init(s.at("init_seed").get<uint64_t>(), "selftest", "init");
    w_ = (normal_tensor(init, {outputs_, inputs_}) / std::sqrt(double(inputs_))).to(env.device).requires_grad_(true);
    b_ = torch::zeros({outputs_}, torch::TensorOptions().device(env.device)).requires_grad_(true);
  }
  std::string name() const override { return "selftest"; }
  std::vector<ParamGroup> param_groups() override {
    ParamGroup w{"weight", {{"weight", w_}}, 1.0, -1};
    ParamGroup b{"bias", {{"bias", b_}}, 1.0, 0.0};  // no decay on biases, as usual
    return {w, b};
  }
  StepLoss compute_loss(const StepContext& ctx) override {
    auto x = torch::empty({ctx.local_batch, inputs_}), y = torch::empty({ctx.local_batch, outputs_});
    for (int64_t k = 0; k < ctx.local_batch; ++k) {
      const int64_t g = ctx.sample_offset + k;
      const int64_t item = int64_t(order_.item(ctx.step, ctx.global_batch, g));
      if (item == bad_item_)
        throw_bad_input("selftest item " + std::to_string(item),
                        "a damaged sample (selftest.bad_item: what a damaged data file does to a run)");
      Rng r(env_.seed, "step " + std::to_string(ctx.step) + " sample " + std::to_string(g), "noise");
      x[k].copy_(x_[item]);
      y[k].copy_(torch::mv(a_, x_[item]) + bstar_ + noise_ * normal_tensor(r, {outputs_}));
    }
    x = x.to(env_.device);
    y = y.to(env_.device);
    auto pred = torch::addmm(b_, x, w_.t());
    StepLoss l;
    l.loss = torch::mse_loss(pred, y);
    l.terms = {{"mse", l.loss.item<double>()}};
    l.images = ctx.local_batch;
    return l;
  }
  void export_model(const std::string& dir) override {
    // A folder like every stage's export: written whole, then put in place
    // (an earlier export replaced), with the export mark.
    model::FolderWriter fw(dir, model::FolderWriter::Existing::replace);
    auto w = w_.detach().cpu().contiguous(), b = b_.detach().cpu().contiguous();
    write_safetensors(path_join(fw.tmp(), "selftest.safetensors"),
                      {{"weight", DType::f32, {outputs_, inputs_}, w.data_ptr(), size_t(w.numel()) * 4},
                       {"bias", DType::f32, {outputs_}, b.data_ptr(), size_t(b.numel()) * 4}},
                      {{"format", "pt"}});
    fw.commit();
  }

 private:
  StageEnv env_;
  int64_t inputs_, outputs_;
  double noise_;
  int64_t bad_item_;
  DataOrder order_;
  torch::Tensor a_, bstar_, x_, w_, b_;
};

}  // namespace

StageInfo selftest_stage_info() {
  StageInfo i;
  i.name = "selftest";
  i.summary = "a small linear model on generated data: checks a launch (processes, checkpoints, --resume) without data or weights";
  i.defaults = [] {
    return nlohmann::ordered_json{{"inputs", 16}, {"outputs", 4}, {"items", 64}, {"noise", 0.1}, {"init_seed", uint64_t{1}},
                                  {"bad_item", -1}};
  };
  i.loop_defaults = [] {
    return nlohmann::ordered_json{{"steps", 100}, {"batch", 8}, {"lr", 0.05}, {"weight_decay", 0.0}, {"checkpoint_every", 50}};
  };
  i.make = [](const nlohmann::ordered_json& s, const StageEnv& env) -> std::unique_ptr<Stage> {
    for (const char* k : {"inputs", "outputs", "items"})
      if (s.at(k).get<int64_t>() <= 0 || s.at(k).get<int64_t>() > (1 << 20))
        throw_usage(std::string("selftest.") + k + " must be in 1..1048576");
    if (!(s.at("noise").get<double>() >= 0)) throw_usage("selftest.noise must be >= 0");
    if (s.at("bad_item").get<int64_t>() < -1 || s.at("bad_item").get<int64_t>() >= s.at("items").get<int64_t>())
      throw_usage("selftest.bad_item must be -1 (none) or an item in 0..selftest.items-1");
    return std::make_unique<SelftestStage>(s, env);
  };
  return i;
}

}  // namespace rass::train
